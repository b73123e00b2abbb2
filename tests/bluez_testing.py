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


class _Link:
    """One client's connection through the relay: its socket, the daemon's, and the cut made
    to it, if any."""

    def __init__(self, client: socket.socket, daemon: socket.socket) -> None:
        self.client = client
        self.daemon = daemon
        self.cut: str | None = None


class FlakyBus:
    """A relay in front of the private dbus-daemon that can kill one client's D-Bus connection
    in the middle of a GATT write, as a dbus-daemon restart or crash does (bluetoothd itself
    restarting is different: the bus answers the call with NoReply, a BleakDBusError).

    Route through ``address`` (DBUS_SYSTEM_BUS_ADDRESS) only the connections opened once the
    radio runs, i.e. the BleakClients' (bleak opens one per client); the double, bleak's
    manager (scanner, Device1 properties) and the radio's own connection keep the daemon's
    address. The relay forwards each connection on threads of its own, so a message passed on
    one relayed connection can overtake one the daemon wrote earlier to another: bleak would
    then see the Connect reply (client connection) before Connected=True (manager connection)
    and fail the connect, "failed to discover services, device disconnected". With only the
    client connection relayed, the relay can only delay the reply behind the signals, the
    order dbus-daemon writes them in.

    After ``cut_next_write(how)`` the next connection that sends a ``WriteValue`` loses its
    bus there, and only that one:

    - "eof": the call is passed on, then the connection closes; nothing the daemon sends after
      the cut reaches the client, not even a reply that comes before the close (bluetoothd may
      or may not get the write): the client reads end of stream, dbus-fast EOFError;
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
            link = _Link(client, daemon)
            for pump in (self._from_client, self._to_client):
                threading.Thread(target=pump, args=(link,), daemon=True).start()

    def _from_client(self, link: _Link) -> None:
        try:
            while True:
                data = link.client.recv(65536, socket.MSG_PEEK)  # consumed once passed on
                if not data:
                    break
                with self._lock:
                    if self._cut and b"WriteValue" in data:
                        link.cut, self._cut = self._cut, None
                        self.cuts.append(link.cut)
                # "eof": link.cut is set before the call goes out, so _to_client, which looks
                # at it after each peek, passes on nothing that could be the reply
                if link.cut == "reset":
                    break
                link.daemon.sendall(link.client.recv(len(data)))
                if link.cut == "eof":
                    break
        except OSError:
            pass
        finally:
            self._close(link)

    def _to_client(self, link: _Link) -> None:
        try:
            while True:
                data = link.daemon.recv(65536, socket.MSG_PEEK)  # consumed once passed on
                if not data or link.cut:
                    break
                link.client.sendall(link.daemon.recv(len(data)))
        except OSError:
            pass
        finally:
            if not link.cut:  # after a cut, _from_client closes (it may still be sending)
                self._close(link)

    def _close(self, link: _Link) -> None:
        # client side first: closed (not shut down) with data unread, it resets the client
        for sock in (link.client, link.daemon):
            with contextlib.suppress(OSError):
                if link.cut != "reset" or sock is not link.client:
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
