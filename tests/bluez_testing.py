"""Helpers for tests that run bleak against the BlueZ double (tests/conftest.py has the
`system_bus` and `run` fixtures): `eventually`, and `FlakyBus`, a relay that drops a client's
D-Bus connection in the middle of a GATT write."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import socket
import tempfile
import threading
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


class FlakyBus:
    """A relay in front of the private dbus-daemon that can kill one client's D-Bus connection
    in the middle of a GATT write, as a dbus-daemon restart or crash does (bluetoothd itself
    restarting is different: the bus answers the call with NoReply, a BleakDBusError).

    Point the hub at ``address`` (DBUS_SYSTEM_BUS_ADDRESS); the double keeps the daemon's own
    address. After ``cut_next_write(how)`` the next connection that sends a ``WriteValue``
    loses its bus there, and only that one (bleak opens one per BleakClient: the scanner's
    connection and the radio's own stay up):

    - "eof": the call is passed on, then the connection closes before any reply (bluetoothd
      may or may not get the write): the client reads end of stream, dbus-fast EOFError;
    - "reset": the connection is closed with the call unread, so the kernel reports
      ECONNRESET to the client (ConnectionResetError, an OSError); bluetoothd never sees it.
    """

    def __init__(self, daemon_socket: str | os.PathLike[str]) -> None:
        self._daemon = os.fspath(daemon_socket)
        self._dir = tempfile.mkdtemp(prefix="carebeacon-relay-")
        path = os.path.join(self._dir, "bus")
        self.address = f"unix:path={path}"
        self.cuts: list[str] = []  # each cut made, in order
        self._cut: str | None = None
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(16)
        threading.Thread(target=self._accept, name="flaky-bus", daemon=True).start()

    def cut_next_write(self, how: str = "eof") -> None:
        assert how in ("eof", "reset")
        self._cut = how

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # close()d
            daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            daemon.connect(self._daemon)
            with self._lock:
                self._open |= {client, daemon}
            for src, dst in ((client, daemon), (daemon, client)):
                args = (src, dst, src is client)
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        how = None
        try:
            while True:
                data = src.recv(65536, socket.MSG_PEEK)  # consumed only once passed on
                if not data:
                    break
                with self._lock:
                    if from_client and self._cut and b"WriteValue" in data:
                        how, self._cut = self._cut, None
                        self.cuts.append(how)
                if how == "reset":
                    break
                dst.sendall(src.recv(len(data)))
                if how == "eof":
                    break
        except OSError:
            pass
        finally:
            # client side first: closed (not shut down) with data unread, it resets the client
            for sock in (src, dst) if from_client else (dst, src):
                with contextlib.suppress(OSError):
                    if how != "reset" or sock is not src:
                        sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                with self._lock:
                    self._open.discard(sock)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() (Linux)
        self._listener.close()
        with self._lock:
            socks, self._open = self._open, set()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> FlakyBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
