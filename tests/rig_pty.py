"""A DUT's USB console on a pseudo-terminal, for the real rig's offline tests
(tests/hil/test_real_rig_*.py): hil/real/console.py opens it through pyserial as it opens
/dev/ttyACM0, and the test plays the board.

    port = DutPort(tmp_path / "ttyDUT").plug()  # a link to the pty, as /dev/serial/by-id/ is
    con = Console(str(port.path)).start()
    port.wait_open(con)                          # pyserial flushes input on open: wait first
    port.send(b"carebeacon: rig boot 2\\r\\n")
    port.unplug()                                # the board left the bus (C3 deep sleep)
    port.plug()                                  # a new pty behind the same link: it is back

The link is replaced atomically; unplugging removes it and closes both ends, so the reader's
next read fails (EIO) and reopening fails (no such file) until the board is plugged again.
"""

from __future__ import annotations

import os
import select
import time
from pathlib import Path


class DutPort:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fds: tuple[int, int] | None = None

    @property
    def plugged(self) -> bool:
        return self._fds is not None

    def plug(self) -> DutPort:
        assert self._fds is None, "already plugged"
        master, slave = os.openpty()
        self._fds = (master, slave)
        tmp = self.path.with_name(self.path.name + ".new")
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.path)
        return self

    def unplug(self) -> None:
        if self._fds is None:
            return
        self.path.unlink(missing_ok=True)
        for fd in self._fds:
            os.close(fd)
        self._fds = None

    close = unplug

    def send(self, data: bytes) -> None:
        assert self._fds is not None, "not plugged"
        os.write(self._fds[0], data)

    def received(self, n: int, timeout: float = 5.0) -> bytes:
        """What the host wrote to the board: n bytes, or fewer at the timeout."""
        assert self._fds is not None, "not plugged"
        out, deadline = b"", time.monotonic() + timeout
        while len(out) < n and (left := deadline - time.monotonic()) > 0:
            if select.select([self._fds[0]], [], [], left)[0]:
                out += os.read(self._fds[0], n - len(out))
        return out

    @staticmethod
    def wait_open(con, opens: int = 1, timeout: float = 5.0) -> None:
        """Until the console has opened the port `opens` times in all."""
        deadline = time.monotonic() + timeout
        while con.reopens < opens:
            assert time.monotonic() < deadline, f"the console did not open the port {opens}x"
            time.sleep(0.01)


def wait_until(pred, timeout: float = 5.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while not (v := pred()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return v
