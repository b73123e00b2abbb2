"""A serial device on a pseudo-terminal: the common part of the simulated boards.

The board owns the pty master; the slave (`/dev/pts/N`) is what a host tool opens as
its serial port. The slave stays open in the board too, so the master never sees a
hang-up when a tool closes and reopens the port (as a USB-serial chip stays put).
mpremote recognises `/dev/pts/N` and reads byte by byte; DTR/RTS ioctls on a pty are
refused, which tools treat as "no modem lines" (mpremote) or must be told (esptool:
`before="no-reset"`).
"""

from __future__ import annotations

import os
import select
import threading
import tty


class Closed(Exception):  # noqa: N818
    """The board is being shut down."""


class PtyDevice:
    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._inbuf = bytearray()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = 0  # bytes the host sent (tests)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._main, name=type(self).__name__,
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(10)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _main(self) -> None:
        try:
            self.run()
        except Closed:
            pass

    def run(self) -> None:  # pragma: no cover - subclasses
        raise NotImplementedError

    # -- bytes ----------------------------------------------------------------------------
    def _fill(self, timeout: float | None) -> bool:
        """Wait up to timeout (None: forever) for input; False on timeout."""
        step = 0.05
        waited = 0.0
        while not self._inbuf:
            if self._closed.is_set():
                raise Closed
            r, _, _ = select.select([self._master], [], [], step)
            if r:
                try:
                    data = os.read(self._master, 65536)
                except OSError:
                    raise Closed from None
                self.received += len(data)
                self._inbuf += data
                return True
            waited += step
            if timeout is not None and waited >= timeout:
                return False
        return True

    def getc(self, timeout: float | None = None) -> int | None:
        if not self._inbuf and not self._fill(timeout):
            return None
        c = self._inbuf[0]
        del self._inbuf[0]
        return c

    def drain(self) -> bytes:
        """Whatever the host has sent so far (without waiting)."""
        while True:
            r, _, _ = select.select([self._master], [], [], 0)
            if not r:
                break
            try:
                data = os.read(self._master, 65536)
            except OSError:
                break
            self.received += len(data)
            self._inbuf += data
        out = bytes(self._inbuf)
        self._inbuf.clear()
        return out

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._closed.is_set():
                raise Closed
            _, w, _ = select.select([], [self._master], [], 0.1)
            if w:
                n = os.write(self._master, view)
                view = view[n:]
