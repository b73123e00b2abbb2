"""Polling for something another process or thread brings about (the hub's status file, a
message at the platform, an ack at a device), with a message that says what never came.

    ev = wait_for(lambda: platform.events.get(ref), 15, f"event {ref} at the platform")
"""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    """predicate()'s first truthy value; TimeoutError naming `what` after `timeout` s.
    Exceptions from predicate() propagate at once (a hub that died need not be waited out)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
