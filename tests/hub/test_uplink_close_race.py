"""Closing the uplink while a connection attempt completes leaves no connection to the broker.

An attempt (paho's blocking `reconnect()`: TCP, TLS, CONNECT queued) runs in a thread of its own
(hub/uplink_loop.py, `Driver._connect`), and the hub may stop at any moment of it, its event loop
closed before the attempt reports back (the report is then dropped: a RuntimeError, swallowed).
Each case holds the attempt thread at one point, closes the uplink as the hub does (or from its
own loop, or on the loop's thread) and its loop, lets the attempt finish, then counts this
process's connections to the broker. The thread is held by a trace function, nothing replaced.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from uplink_testing import Hub, config, wait_until

from hub.uplink import Uplink

pytestmark = pytest.mark.timeout(60)

ATTEMPT_THREAD = "carebeacon-uplink-connect"  # hub/uplink_loop.py


def connections_to(port: int) -> int:
    """This process's established TCP connections to `port` (Linux /proc)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    n = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "01" and int(f[2].rsplit(":", 1)[1], 16) == port and f[9] in mine:
                n += 1
    return n


class Gate:
    """Holds the attempt thread at `point` until released:
    "made"   - the TLS socket exists, paho has not stored it (client.socket() is None);
    "stored" - paho stored it, the loop has not heard of it (on_socket_open not called yet);
    "done"   - reconnect() returned; the thread is about to report to the loop."""

    def __init__(self, point: str):
        self.point = point
        self.held, self.release = threading.Event(), threading.Event()
        self.returned = False

    def _hold(self) -> None:
        if not self.held.is_set():
            self.held.set()
            self.release.wait(20)

    def trace(self, frame, event, arg):
        if threading.current_thread().name != ATTEMPT_THREAD or self.held.is_set():
            return None
        name, paho = frame.f_code.co_name, "paho" in frame.f_code.co_filename
        if self.point == "made" and name == "_create_socket" and paho:
            return self._on_return(self._hold)
        if self.point == "stored" and name == "_call_socket_open" and paho:
            self._hold()
        if self.point == "done":
            if name == "reconnect" and paho:
                return self._on_return(lambda: setattr(self, "returned", True))
            if name == "call_soon_threadsafe" and self.returned:
                self._hold()
        return None

    @staticmethod
    def _on_return(fn):
        def local(frame, event, arg):
            if event == "return":
                fn()
            return local

        return local

    def __enter__(self) -> Gate:
        threading.settrace(self.trace)  # threads started from now on: the attempt's
        return self

    def __exit__(self, *exc) -> None:
        threading.settrace(None)  # type: ignore[arg-type]
        self.release.set()


def close_own_loop(broker, gate: Gate) -> Uplink:
    hub = Hub(config(broker))
    hub.uplink.start()
    assert gate.held.wait(5), "the attempt never reached the point"
    hub.uplink.close()
    return hub.uplink


def close_on_hub_loop(broker, gate: Gate, *, on_loop_thread: bool) -> Uplink:
    async def main() -> Uplink:
        loop = asyncio.get_running_loop()
        uplink = Uplink(config(broker), loop=loop)
        uplink.start()
        deadline = time.monotonic() + 5
        while not gate.held.is_set():
            assert time.monotonic() < deadline, "the attempt never reached the point"
            await asyncio.sleep(0.001)
        if on_loop_thread:
            uplink.close()  # nothing can wait there: close_now
        else:
            await loop.run_in_executor(None, uplink.close)  # as hub/daemon.py does
        return uplink

    return asyncio.run(main())  # closes the loop


@pytest.mark.parametrize("point", ["made", "stored", "done"])
@pytest.mark.parametrize("how", ["own loop", "hub loop", "on the loop"])
def test_an_attempt_completing_as_the_uplink_closes_leaves_no_connection(broker, point, how):
    with Gate(point) as gate:
        if how == "own loop":
            uplink = close_own_loop(broker, gate)
        else:
            uplink = close_on_hub_loop(broker, gate, on_loop_thread=how == "on the loop")
        assert uplink._loop is not None and uplink._loop.is_closed()  # its report is dropped
        gate.release.set()
        attempts = [t for t in threading.enumerate() if t.name == ATTEMPT_THREAD]
        for t in attempts:
            t.join(5)
    wait_until(lambda: connections_to(broker.port) == 0, 2.0, "no connection to the broker")
    time.sleep(0.3)  # and none appearing late
    assert connections_to(broker.port) == 0
