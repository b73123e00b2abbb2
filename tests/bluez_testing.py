"""Helpers for tests that run bleak against the BlueZ double (tests/conftest.py has the
`system_bus` and `run` fixtures)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], Any], timeout: float = 3.0, poll: float = 0.01) -> None:
    """Poll `check` (sync or async) until true: for state updated by messages in flight."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(poll)
