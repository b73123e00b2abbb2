"""The uplink's callbacks to its caller, run on the uplink's event loop.

paho is driven by that loop (hub/uplink_loop.py), so its callbacks already run on the loop's
thread; each of the caller's callbacks is still queued with `loop.call_soon` rather than called
in place, so it runs one at a time, in the order paho saw things, outside paho's own locks and
after the packet that caused it has been handled. From any other thread (an uplink method called
off the loop) it is posted with `call_soon_threadsafe`. Threading model: hub/uplink.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from hub.uplink_loop import running_on

log = logging.getLogger("carebeacon.uplink")


class Callbacks:
    """Callbacks by name ("delivered", "rejected", "connected", ...); a missing one is skipped.
    `loop` is set before the first dispatch (the uplink's start)."""

    def __init__(self, callbacks: dict[str, Callable | None]) -> None:
        self._cb = callbacks
        self.loop: asyncio.AbstractEventLoop | None = None

    def has(self, name: str) -> bool:
        return self._cb.get(name) is not None

    def dispatch(self, name: str, *args: Any) -> None:
        self.call(self._cb.get(name), *args)

    def call(self, fn: Callable | None, *args: Any) -> None:
        """Run fn(*args) as a named callback is run: e.g. one a caller handed with a call."""
        loop = self.loop
        if fn is None or loop is None:
            return
        try:
            if running_on(loop):
                loop.call_soon(self._run, fn, args)
            else:
                loop.call_soon_threadsafe(self._run, fn, args)
        except RuntimeError:  # the event loop is closed: the hub is going away
            log.debug("dropped %s callback: event loop closed", getattr(fn, "__name__", fn))

    @staticmethod
    def _run(fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        except Exception:  # a faulty callback must not stop the uplink or the event loop
            log.exception("uplink callback %r failed", getattr(fn, "__name__", fn))
