"""The uplink's callbacks to its caller, handed over from paho's network thread.

With an asyncio loop each call is posted with `loop.call_soon_threadsafe`, so the caller's
callbacks run on its event-loop thread, one at a time, in the order paho saw things; without
one they run on the paho thread itself (threading model: hub/uplink.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("carebeacon.uplink")


class Callbacks:
    """Callbacks by name ("delivered", "rejected", "connected", ...); a missing one is skipped."""

    def __init__(
        self, callbacks: dict[str, Callable | None], loop: asyncio.AbstractEventLoop | None
    ) -> None:
        self._cb = callbacks
        self._loop = loop

    def dispatch(self, name: str, *args: Any) -> None:
        fn = self._cb.get(name)
        if fn is None:
            return
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._run, fn, args)
            except RuntimeError:  # the event loop is closed: the hub is going away
                log.debug("dropped %s callback: event loop closed", name)
        else:
            self._run(fn, args)

    @staticmethod
    def _run(fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        except Exception:  # a faulty callback must not kill paho's thread or the event loop
            log.exception("uplink callback %r failed", getattr(fn, "__name__", fn))
