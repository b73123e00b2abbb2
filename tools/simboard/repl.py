"""A simulated MicroPython board on a pseudo-terminal, for the real mpremote.

    with SimBoard(tmp_path / "flash") as board:      # the directory is the board's filesystem
        subprocess.run(["mpremote", "connect", board.port, "fs", "ls"])

The REPL follows MicroPython's shared/runtime/pyexec.c byte for byte where a host tool can
tell: the friendly REPL (banner, `>>> `, Ctrl-A/B/C/D), the raw REPL (`raw REPL; CTRL-B to
exit\\r\\n>`, `OK`, output `\\x04` error `\\x04`, `>`; Ctrl-D on an empty line = soft reset,
`MPY: soft reboot\\r\\n`), and raw-paste (`\\x05A\\x01` -> `R\\x01`, window 128 as 2 bytes
little-endian, `\\x01` for one more window now and after each window consumed, `\\x04` echoed
at the end of data). The code runs in real MicroPython (tools/simboard/mpvm.py) with the
directory mounted as `/`; a soft reset starts a fresh VM (globals gone, files kept), and
`machine.reset()` ends the VM at once and boots again (ROM text, banner, friendly REPL), as a
chip does. Output is "cooked" like an ESP32 console (`\\n` -> `\\r\\n`).

Knobs: `asleep` (the app is in deep sleep: nothing answers, as a battery device between
wakes), `missing` (ESP32 firmware modules to leave out, to test import checks), `chip`.
The board never runs main.py at boot: it has no radio; the firmware's behaviour is
simulated elsewhere (firmware/hal/sim*.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from tools.simboard.mpvm import BoardVM, Reset
from tools.simboard.pty import Closed, PtyDevice

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
WINDOW = 128  # raw-paste flow-control window: half the 256-byte stdin buffer
ROM_TEXT = {
    "ESP32": b"ets Jul 29 2019 12:21:46\r\n\r\nrst:0xc (SW_CPU_RESET),boot:0x13 "
             b"(SPI_FAST_FLASH_BOOT)\r\n",
    "ESP32C3": b"ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\nrst:0x3 "
               b"(RTC_SW_SYS_RST),boot:0xc (SPI_FAST_FLASH_BOOT)\r\n",
}


class SimBoard(PtyDevice):
    def __init__(self, root: str | Path, *, chip: str = "ESP32C3", asleep: bool = False,
                 missing: tuple[str, ...] = (), unique_id: str = "a0b1c2d3e4f5",
                 version: str = "1.27.0"):
        super().__init__()
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.chip = chip
        self.asleep = asleep
        self.missing = tuple(missing)
        self.unique_id = unique_id
        self.banner = (f"MicroPython v{version} on simboard; {chip} module (simulated) with "
                       f"{chip}\r\nType \"help()\" for more information.\r\n").encode()
        self.raw = False
        self._fresh = True  # the next prompt is the first of this mode: banner first
        self.execs: list[str] = []  # every piece of code run (tests read it)
        self.events: list[str] = []  # "soft reset", "hard reset", "raw-paste", ...

    # -- the board's life ---------------------------------------------------------------------
    def run(self) -> None:
        cause = "power-on"
        while True:
            if cause in ("power-on", "reset") and not self.asleep:  # asleep: booted long ago
                self.write(ROM_TEXT.get(self.chip, ROM_TEXT["ESP32C3"]))
                self.raw = False
                self._fresh = True
            elif cause == "soft":
                self.write(b"MPY: soft reboot\r\n")
                self._fresh = True
            while self.asleep:  # deep sleep: the USB console is dead, input is lost
                self.drain()
                if self._closed.wait(0.05):
                    raise Closed
            try:
                cause = BoardVM(self.root, self).run()
            except Closed:
                raise
            if cause == "closed":
                raise Closed
            self.events.append("soft reset" if cause == "soft" else "hard reset")
            if cause != "soft":
                time.sleep(0.05)  # the chip reboots: what the host sends now is lost
                self.drain()

    # -- host side of the guest's calls -------------------------------------------------------
    def output(self, data: bytes) -> None:
        try:
            self.write(data.replace(b"\n", b"\r\n"))
        except Closed:
            raise Reset("closed") from None

    def next(self) -> dict:
        """What the REPL reads before running the next piece of code (pyexec.c)."""
        try:
            return self._raw() if self.raw else self._friendly()
        except Closed:
            raise Reset("closed") from None

    def _prompt(self) -> None:
        if self.raw:
            self.write((RAW_BANNER if self._fresh else b"") + b">")
        else:
            self.write((self.banner if self._fresh else b"") + b">>> ")
        self._fresh = False

    def _raw(self) -> dict:
        self._prompt()
        line = bytearray()
        while True:
            c = self.getc()
            if c == 0x01:  # Ctrl-A: raw-paste request, or reset the raw REPL
                if len(line) == 2 and line[0] == 0x05:
                    if line[1] != ord("A"):
                        self.write(b"R\x00>")
                        line.clear()
                        continue
                    self.events.append("raw-paste")
                    return self._paste()
                line.clear()
                self.write(RAW_BANNER + b">")
            elif c == 0x02:  # Ctrl-B: friendly REPL
                self.write(b"\r\n")
                self.raw, self._fresh = False, True
                return self._friendly()
            elif c == 0x03:
                line.clear()
            elif c == 0x04:
                self.write(b"OK")
                if not line:
                    self.write(b"\r\n")
                    return {"exit": True}
                return self._code(line, raw=True)
            else:
                line.append(c)

    def _paste(self) -> dict:
        self.write(b"R\x01" + WINDOW.to_bytes(2, "little") + b"\x01")
        data = bytearray()
        remain = WINDOW
        while True:
            c = self.getc()
            if c in (0x03, 0x04):
                self.write(b"\x04")
                if c == 0x03:
                    data = bytearray(b"raise KeyboardInterrupt")
                return self._code(data, raw=True)
            data.append(c)
            remain -= 1
            if remain == 0:
                self.write(b"\x01")
                remain = WINDOW

    def _friendly(self) -> dict:
        self._prompt()
        line = bytearray()
        while True:
            c = self.getc()
            if c == 0x01:
                self.write(b"\r\n")
                self.raw, self._fresh = True, True
                return self._raw()
            if c == 0x02:
                self.write(b"\r\n")
                self._fresh = True
                self._prompt()
                line.clear()
            elif c == 0x03:
                self.write(b"\r\n>>> ")
                line.clear()
            elif c == 0x04 and not line:
                self.write(b"\r\n")
                return {"exit": True}
            elif c == 0x0D:
                self.write(b"\r\n")
                if line.strip():
                    return self._code(line, raw=False)
                self.write(b">>> ")
            elif c in (0x08, 0x7F):
                if line:
                    line.pop()
                    self.write(b"\x08 \x08")
            elif c is not None and c >= 0x20:
                line.append(c)
                self.write(bytes([c]))

    def _code(self, data: bytearray, raw: bool) -> dict:
        code = data.decode("utf-8", "replace")
        self.execs.append(code)
        return {"code": code, "raw": raw}
