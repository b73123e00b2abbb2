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
import json
import logging
import os
import threading
import time

import pytest
from uplink_testing import Client, Hub, P, config, wait_until

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
        self.close_s = 0.0  # how long the uplink's close took

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
    t0 = time.monotonic()
    hub.uplink.close()
    gate.close_s = time.monotonic() - t0
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
        t0 = time.monotonic()
        if on_loop_thread:
            uplink.close()  # nothing can wait there: close_now
        else:
            await loop.run_in_executor(None, uplink.close)  # as hub/daemon.py does
        gate.close_s = time.monotonic() - t0
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
        # quick: a socket the loop never registered gets no DISCONNECT, so none is waited for
        # (the close used to wait for it until its timeout + 1 s: 3 s)
        assert gate.close_s < 1.0
        gate.release.set()
        attempts = [t for t in threading.enumerate() if t.name == ATTEMPT_THREAD]
        for t in attempts:
            t.join(5)
    wait_until(lambda: connections_to(broker.port) == 0, 2.0, "no connection to the broker")
    time.sleep(0.3)  # and none appearing late
    assert connections_to(broker.port) == 0


# ----- a stop after the loop took the attempt's socket -------------------------------------------
# The attempt thread hands its socket to the loop through on_socket_open, posted while reconnect()
# runs; the thread itself looks at `stopped` only after reconnect() returned. A stop in between
# must leave the socket to the loop: the close then publishes "shutdown" and DISCONNECTs, and the
# broker discards the will.


class LateAttempt:
    """Holds the attempt thread as paho's reconnect() returns, while the loop registers the
    socket and connects; once the uplink's close has called stop() (it then builds the shutdown
    state: `_shutdown_state`), lets the attempt finish and holds the close until it has."""

    def __init__(self) -> None:
        self.returning, self.release = threading.Event(), threading.Event()
        self.attempt: threading.Thread | None = None

    def trace(self, frame, event, arg):
        code, me = frame.f_code, threading.current_thread()
        if me.name == ATTEMPT_THREAD and self.attempt is None:
            if code.co_name == "reconnect" and "paho" in code.co_filename:
                return self._on_return(me)
        elif code.co_name == "_shutdown_state" and self.attempt is not None:
            self.release.set()  # close() has just stopped the driver: the attempt ends now
            self.attempt.join(5)
            assert not self.attempt.is_alive(), "the attempt did not finish"
        return None

    def _on_return(self, thread: threading.Thread):
        def local(frame, event, arg):
            if event == "return":
                self.attempt = thread
                self.returning.set()
                self.release.wait(20)
            return local

        return local

    def __enter__(self) -> LateAttempt:
        threading.settrace(self.trace)  # threads started from now on: the loop's, the attempt's
        return self

    def __exit__(self, *exc) -> None:
        threading.settrace(None)  # type: ignore[arg-type]
        self.release.set()


def close_late(broker, gate: LateAttempt, how: str) -> None:
    """Connect with the attempt thread held at its end, then close the uplink `how`."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        hub = Hub(config(broker), loop=loop)
        hub.uplink.start()
        while not (hub.connects and gate.returning.is_set()):
            await asyncio.sleep(0.005)
        await loop.run_in_executor(None, hub.uplink.close)  # as hub/daemon.py does

    if how == "hub loop":  # in a thread of its own, started under the trace function
        t = threading.Thread(target=lambda: asyncio.run(main()), name="hub-loop")
        t.start()
        t.join(15)
        assert not t.is_alive()
        return
    hub = Hub(config(broker))
    hub.uplink.start()
    hub.wait_connected()
    assert gate.returning.wait(5)
    if how == "own loop":
        hub.uplink.close()
    else:  # on the loop's thread: close_now
        done = threading.Event()

        def close() -> None:
            try:
                hub.uplink.close()
            finally:
                done.set()

        hub.uplink._loop.call_soon_threadsafe(close)
        assert done.wait(10)


@pytest.mark.parametrize("how", ["own loop", "hub loop", "on the loop"])
def test_a_stop_after_the_loop_took_the_socket_is_an_orderly_close(broker, caplog, how):
    caplog.set_level(logging.DEBUG)
    platform = Client(broker, subscribe=(f"{P}/hub-a/state",)).wait_ready()
    with LateAttempt() as gate:
        close_late(broker, gate, how)
    wait_until(lambda: len(platform.on("/state")) >= 2, what="the state after the close")
    time.sleep(0.3)  # and a will, if one comes
    states = [json.loads(m.payload) for m in platform.on("/state")]
    states = [(s["state"], s["reason"]) for s in states]
    assert states == [("online", "connected"), ("offline", "shutdown")]  # no will: DISCONNECTed
    assert "Bad file descriptor" not in caplog.text
    platform.close()
    wait_until(lambda: connections_to(broker.port) == 0, 2.0, "no connection to the broker")
