"""The simulated board speaks MicroPython's raw REPL and raw-paste byte for byte, runs real
MicroPython on a real directory, and the real mpremote CLI works against it."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.simboard.repl import SimBoard

ROOT = Path(__file__).resolve().parents[2]


class Host:
    """The host end of the board's pty, speaking the protocol by hand."""

    def __init__(self, port: str):
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY)  # already raw: the board set it up

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def until(self, ending: bytes, timeout: float = 10) -> bytes:
        out = b""
        end = time.monotonic() + timeout
        while not out.endswith(ending):
            r, _, _ = select.select([self.fd], [], [], max(0.0, end - time.monotonic()))
            if not r:
                raise AssertionError(f"timeout waiting for {ending!r}; got {out!r}")
            out += os.read(self.fd, 1)
        return out

    def read(self, n: int, timeout: float = 5) -> bytes:
        out = b""
        while len(out) < n:
            r, _, _ = select.select([self.fd], [], [], timeout)
            if not r:
                raise AssertionError(f"timeout reading {n} bytes; got {out!r}")
            out += os.read(self.fd, n - len(out))
        return out

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def board(tmp_path):
    with SimBoard(tmp_path / "fs") as b:
        yield b


def test_raw_repl_and_raw_paste_follow_pyexec(board):
    h = Host(board.port)
    try:
        assert h.until(b">>> ").startswith(b"ESP-ROM:esp32c3")  # boot text, banner, prompt
        h.send(b"\r\x01")  # enter the raw REPL
        assert h.until(b"exit\r\n>") == b"\r\n>>> \r\nraw REPL; CTRL-B to exit\r\n>"
        h.send(b"\x04")  # Ctrl-D on an empty line: soft reset
        assert h.until(b"raw REPL; CTRL-B to exit\r\n>") == \
            b"OK\r\nMPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>"
        # plain raw mode: code, Ctrl-D -> OK, stdout \x04 stderr \x04 >
        h.send(b"print(6 * 7)\x04")
        assert h.until(b"\x04>") == b"OK42\r\n\x04\x04>"
        # raw-paste: window 128 as 2 bytes LE plus one extra window grant, then 0x01 per window
        h.send(b"\x05A\x01")
        assert h.read(5) == b"R\x01\x80\x00\x01"
        code = b"x = 0\n" + b"x += 1\n" * 40 + b"print('x=%d' % x)\n"  # 286 bytes: 2 windows
        h.send(code)
        assert h.read(2) == b"\x01\x01"
        h.send(b"\x04")
        assert h.until(b"\x04>") == b"\x04x=40\r\n\x04\x04>"
        # an error: traceback after the first \x04, errno named as an ESP32 names it
        h.send(b"\x05A\x01")
        h.read(5)
        h.send(b"open('/nope')\x04")
        out = h.until(b"\x04>")
        assert out.startswith(b"\x04\x04Traceback") and b"OSError: [Errno 2] ENOENT\r\n\x04>" in out
        # globals persist between executions (mpremote's `f=open(..)` then `w(..)` relies on it)
        h.send(b"\x05A\x01")
        h.read(5)
        h.send(b"print(x + 2)\x04")
        assert h.until(b"\x04>") == b"\x0442\r\n\x04\x04>"
        h.send(b"\r\x02")  # back to the friendly REPL: banner again
        assert h.until(b">>> ").endswith(b"for more information.\r\n>>> ")
    finally:
        h.close()
    assert "raw-paste" in board.events and "soft reset" in board.events


def mpremote(board, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_real_mpremote_copies_lists_hashes_and_resets(board, tmp_path):
    src = tmp_path / "data.bin"
    src.write_bytes(bytes(range(256)) * 9 + b"tail")  # binary, several 256-byte chunks
    r = mpremote(board, "fs", "mkdir", ":lib", "+", "fs", "cp", str(src), ":lib/data.bin",
                 "+", "fs", "ls", ":lib", "+", "fs", "sha256sum", ":lib/data.bin")
    assert r.returncode == 0, r.stderr
    assert (board.root / "lib" / "data.bin").read_bytes() == src.read_bytes()  # a real file
    import hashlib

    assert hashlib.sha256(src.read_bytes()).hexdigest() in r.stdout
    assert f"{src.stat().st_size} data.bin" in " ".join(r.stdout.split())  # sizes, as on ESP32
    r = mpremote(board, "fs", "cat", ":missing.txt")
    assert r.returncode == 1 and "No such file or directory" in r.stderr  # errno text mapped
    resets = board.events.count("hard reset")
    r = mpremote(board, "reset")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 5
    while board.events.count("hard reset") == resets and time.monotonic() < deadline:
        time.sleep(0.05)
    assert board.events.count("hard reset") == resets + 1  # machine.reset() rebooted the VM
    r = mpremote(board, "exec", "import sys; print(sys.implementation._mpy & 0xff)")
    assert r.returncode == 0 and r.stdout.strip() == "6", r.stderr  # alive again after reset


def test_asleep_board_does_not_answer(tmp_path):
    with SimBoard(tmp_path / "fs", asleep=True) as b:
        h = Host(b.port)
        try:
            h.send(b"\r\x03\r\x01")
            r, _, _ = select.select([h.fd], [], [], 0.5)
            assert not r  # deep sleep: the console is dead
        finally:
            h.close()
