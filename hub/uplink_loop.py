"""The uplink's paho client driven by an asyncio event loop, with no network thread of paho's.

Why: with paho's own thread (`loop_start`) every alarm crossed threads twice: its PUBLISH was
written only once the event loop let go of the GIL, and its PUBACK came back through
`call_soon_threadsafe`. Here paho's socket is registered with the loop instead (paho's
`on_socket_*` callbacks, `add_reader`/`add_writer`), so the publish, the PUBACK and the hub's
callbacks all happen on the loop's thread.

Driven like this paho does not reconnect by itself: `Driver` does, with the uplink's delays
(the minimum, doubling up to the maximum, back to the minimum after a CONNACK that accepts the
hub). An attempt (DNS, TCP connect, TLS handshake: paho's blocking `reconnect()`) runs in a
short-lived thread of its own, one at a time, so a broker that is down or slow never blocks the
loop; paho hands the new socket over through `on_socket_open`, posted to the loop. A timer calls
`loop_misc` once a second: PINGREQ, and a broker that stopped answering (keepalive).

Everything here runs on the loop's thread, except `_connect` (the attempt thread), whose
socket callbacks are posted to the loop in order. The attempt's socket is the attempt thread's
until the loop registers it (`_register`), then the loop's: a stop ends registering, and the
thread, looking under a lock shared with `stop()`, closes its socket only if the loop had not
taken it. A registered one is the close's to end (DISCONNECT first, or the broker sends the will).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger("carebeacon.uplink")

MISC_S = 1.0  # loop_misc period: keepalive is counted in whole seconds (30 s by default)


def running_on(loop: asyncio.AbstractEventLoop | None) -> bool:
    """True on the thread that is running `loop` (then its non-threadsafe calls are allowed)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class LoopThread:
    """An event loop in a daemon thread: for an Uplink made without a loop (tests, scripts)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="carebeacon-uplink", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # already closed
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join(5)
            if not self.thread.is_alive():
                self.loop.close()


class Driver:
    """Runs one paho client on `loop`: socket events, loop_misc, connection attempts, retries.

    `prepare()`: run first in each attempt's thread (the TLS context, built from its files);
    `on_failed(exc)`: an attempt failed before a socket existed (refused, TLS, DNS, `prepare`);
    `on_closed()`: the socket closed (connection lost, refused by CONNACK, or the broker went
    quiet). A retry is scheduled after either, until `stop()`."""

    def __init__(
        self,
        client: mqtt.Client,
        loop: asyncio.AbstractEventLoop,
        *,
        min_delay: float,
        max_delay: float,
        on_failed: Callable[[BaseException], Any],
        on_closed: Callable[[], Any],
        prepare: Callable[[], Any] | None = None,
    ) -> None:
        self.client, self.loop = client, loop
        self._prepare = prepare
        self._min, self._max = min_delay, max_delay
        self._delay: float | None = None  # the last retry delay; None: next one is the minimum
        self._on_failed, self._on_closed = on_failed, on_closed
        self.stopped = False
        self._stopping = threading.Lock()  # stop() vs the attempt thread's look at `stopped`
        self._connecting = False  # an attempt thread is running
        self._in_paho = False  # inside loop_read/loop_write/loop_misc (and so maybe a callback)
        self._retry: asyncio.TimerHandle | None = None
        self._misc: asyncio.TimerHandle | None = None
        self.sock: Any = None  # the socket registered with the loop, and its fd: a socket
        self._fd = -1  # closed meanwhile has none, and its number may be reused
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write

    # ----- control (loop thread) ------------------------------------------------------------------
    def start(self) -> None:
        self._misc = self.loop.call_later(MISC_S, self._tick)
        self._attempt()

    def connected(self) -> None:
        """A CONNACK accepted the hub: the next outage starts again at the minimum delay."""
        self._delay = None

    def stop(self) -> None:
        """No more attempts nor retries; the socket, if any, is still served (for close)."""
        with self._stopping:
            self.stopped = True
        for h in (self._retry, self._misc):
            if h is not None:
                h.cancel()
        self._retry = self._misc = None

    async def close(self, last: Callable[[], Any], timeout: float) -> None:
        """Orderly end: publish `last()` (the shutdown state; None: nothing), wait up to
        `timeout` for its PUBACK, then DISCONNECT, so the broker discards the will."""
        self.stop()  # no retries from now on; the connection is still served
        client, loop = self.client, self.loop
        deadline = loop.time() + timeout
        info = last()
        while info is not None and not info.is_published() and self.sock is not None:
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.005)
        client.disconnect()  # written by the loop; paho then closes the socket
        # only on the loop's socket: one still the attempt's is never written (nor its CONNECT)
        while self.sock is not None and loop.time() < deadline + 1.0:
            await asyncio.sleep(0.005)
        self.drop()

    def close_now(self, last: Callable[[], Any], timeout: float = 1.0) -> None:
        """`close` where nothing can wait for the loop (on its thread, or it has stopped): the
        same packets, written and read from here, blocking up to `timeout` for the PUBACK. Not
        waiting, the PUBACK met a closed socket, whose RST could reach the broker before it read
        the DISCONNECT: the broker then published the will (29 closes in 60)."""
        self.stop()
        info = last()
        self._write_out()
        deadline = time.monotonic() + timeout
        while info is not None and not _published(info) and self._served():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            pending = getattr(self.sock, "pending", None)  # TLS may hold decrypted bytes
            ready = pending is not None and pending() > 0
            if not ready and not select.select([self.sock], [], [], left)[0]:
                continue
            self._in_paho = True
            try:
                self.client.loop_read()  # the PUBACK; paho's callbacks run here, on this thread
            finally:
                self._in_paho = False
            self._write_out()
        self.client.disconnect()
        self._write_out()
        self.drop()

    def _served(self) -> bool:
        """The loop's socket is still paho's (a loop that stopped does not hear of a close)."""
        return self.sock is not None and self.client.socket() is self.sock

    def _write_out(self) -> None:
        for _ in range(100):  # what is queued, in order; on the loop's socket only
            if not self._served() or not self.client.want_write():
                break
            self.client.loop_write()

    def drop(self) -> None:
        """Stop, and close the socket without a word to the broker (it sends the will)."""
        self.stop()
        # also an attempt's socket never registered: its report to the loop may be lost with the
        # loop; the attempt thread at most closes it again (a no-op)
        sock = self.sock or self.client.socket()
        self._unregister()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # ----- attempts -------------------------------------------------------------------------------
    def _attempt(self) -> None:
        self._retry = None
        if self.stopped:
            return
        if self._connecting:  # the last attempt's thread has not reported yet: soon
            self._retry = self.loop.call_later(0.05, self._attempt)
            return
        self._connecting = True
        threading.Thread(
            target=self._connect, name="carebeacon-uplink-connect", daemon=True
        ).start()

    def _connect(self) -> None:  # the attempt thread
        err: BaseException | None = None
        try:
            if self._prepare is not None:
                self._prepare()  # before any connection: a bad file fails the attempt here
            self.client.reconnect()  # blocks: DNS, TCP, TLS handshake; then queues CONNECT
        except Exception as e:  # OSError, ssl.SSLError, a certificate name mismatch (ValueError)
            err = e
        else:
            sock = self.client.socket()
            # once stopped the loop takes no socket (`_register`): one it has not taken is this
            # thread's to close (its loop may be gone), one it has is the close's (DISCONNECT)
            with self._stopping:
                if self.stopped and sock is not None and sock is not self.sock:
                    with contextlib.suppress(OSError):
                        sock.close()
        with contextlib.suppress(RuntimeError):  # the loop is closed: the uplink is gone
            self.loop.call_soon_threadsafe(self._attempted, err)

    def _attempted(self, err: BaseException | None) -> None:
        self._connecting = False
        if self.stopped:  # closed while connecting: do not leave a connection behind, but a
            if err is None and self.sock is None:  # registered one is the close's to end
                self.drop()
            return
        if err is not None:
            self._on_failed(err)
            self._schedule()

    def _schedule(self) -> None:
        if self.stopped or self._retry is not None:
            return
        self._delay = self._min if self._delay is None else min(self._delay * 2, self._max)
        self._retry = self.loop.call_later(self._delay, self._attempt)

    def _tick(self) -> None:
        self._misc = self.loop.call_later(MISC_S, self._tick)
        if self.sock is not None:  # not during an attempt: the attempt thread owns paho then
            self._in_paho = True
            try:
                self.client.loop_misc()
            finally:
                self._in_paho = False

    def flush(self) -> None:
        """Write what paho has queued now, not at the loop's next turn: an alarm's PUBLISH
        leaves one select() sooner. Not from inside paho (a callback publishing): paho's packet
        handling is not re-entrant, and the loop writes it a moment later anyway."""
        if not self._in_paho and self.sock is not None and self.client.want_write():
            self._writable()

    # ----- socket events (loop thread) ------------------------------------------------------------
    def _readable(self) -> None:
        sock, client = self.sock, self.client
        pending = getattr(sock, "pending", None)
        self._in_paho = True
        try:
            while True:
                client.loop_read()
                # TLS may already hold decrypted packets that the socket will not signal again
                if client.socket() is not sock or pending is None or pending() <= 0:
                    break
        finally:
            self._in_paho = False

    def _writable(self) -> None:
        self._in_paho = True
        try:
            self.client.loop_write()
        finally:
            self._in_paho = False
        if self.sock is not None and not self.client.want_write():
            self.loop.remove_writer(self._fd)  # a late registration with nothing left to send

    # ----- paho's socket callbacks (loop thread, or the attempt thread: posted) -------------------
    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        if running_on(self.loop):
            fn(*args)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self.loop.call_soon_threadsafe(fn, *args)

    def _socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        self._post(self._register, sock)

    def _socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        self._post(self._closed, sock)

    def _register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._post(self._want_write, sock, True)

    def _unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._post(self._want_write, sock, False)

    def _register(self, sock: Any) -> None:
        if self.stopped:
            return
        if sock is not self.client.socket():  # closed before the loop got to it: try again
            self._schedule()
            return
        self.sock, self._fd = sock, sock.fileno()
        self.loop.add_reader(self._fd, self._readable)
        # paho asks for a writer once per socket: asked before the loop took the socket (a
        # publish while the attempt had it), that request was dropped above (`_want_write`)
        if self.client.want_write():
            self.loop.add_writer(self._fd, self._writable)

    def _want_write(self, sock: Any, on: bool) -> None:
        if sock is not self.sock:
            return
        if on:
            self.loop.add_writer(self._fd, self._writable)
        else:
            self.loop.remove_writer(self._fd)

    def _closed(self, sock: Any) -> None:
        if sock is not self.sock:
            return
        self._unregister()
        if not self.stopped:
            self._on_closed()
            self._schedule()

    def _unregister(self) -> None:
        if self.sock is not None:
            self.loop.remove_reader(self._fd)
            self.loop.remove_writer(self._fd)
        self.sock, self._fd = None, -1


def _published(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except (RuntimeError, ValueError):  # paho raises for a message it could not queue
        return True
