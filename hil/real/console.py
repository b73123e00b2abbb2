"""The DUT's serial console over USB (pyserial): every line it prints, timestamped.

    con = Console("/dev/ttyACM0", on_line=None).start()
    con.wait_for(r"carebeacon: pattern (\\d+)", since=t0, timeout=10)
    con.write_line("I 1000,8,-3;998,6,-1")      # IMU samples for device/imu_serial.py

The firmware prints `carebeacon: <what> <value>` for traces and logs when its config has
"log": true (firmware/hal/esp32.py); device/rig_main.py adds `carebeacon: rig boot <cause>`
and `carebeacon: rig deep_sleep <ms>`. A board whose USB is the chip's own (ESP32-C3 USB
Serial/JTAG) drops off the bus in deep sleep: the reader reopens the port when it comes
back and keeps the lines in order (HW-CHECK on each board). A line cut off by the port
going away (the chip slept or lost power before its newline got out) is kept as it is,
stamped when the port went, never glued to what the chip prints after it comes back.
"""

from __future__ import annotations

import re
import threading
import time

PATTERN = r"carebeacon: pattern (\d+)"  # firmware/hal/esp32.py trace() of firmware/feedback.py
MARK = r"carebeacon: rig (boot|deep_sleep)"  # device/rig_hooks.py


class Console:
    def __init__(self, port: str, baud: int = 115200, on_line=None):
        self.port, self.baud, self.on_line = port, baud, on_line
        self.lines: list[tuple[float, str]] = []  # (monotonic, text)
        self.lock = threading.Lock()
        self._io = threading.Lock()  # a write never meets the port half closed
        self._ser = None
        self._stop = False
        self._thread: threading.Thread | None = None
        self.reopens = 0

    def start(self) -> Console:
        import serial  # pyserial: a project dependency

        self._serial = serial
        self._thread = threading.Thread(target=self._run, name="dut-console", daemon=True)
        self._thread.start()
        return self

    def _open(self):
        # write_timeout: a board that stops reading (its buffer full) fails a write instead of
        # blocking the writer, and with it the reader's reopening (both take _io)
        return self._serial.Serial(self.port, self.baud, timeout=0.2, write_timeout=0.5)

    def _run(self) -> None:
        buf = b""
        while not self._stop:
            if self._ser is None:
                try:
                    self._ser = self._open()
                    self.reopens += 1
                except (OSError, self._serial.SerialException):
                    time.sleep(0.2)
                    continue
            try:  # what is there, or wait for one byte: a read(256) would wait out the timeout
                chunk = self._ser.read(self._ser.in_waiting or 1)  # and stamp lines 0.2 s late
            except (OSError, self._serial.SerialException):
                self._close_port()
                if buf:
                    self._add(buf)
                    buf = b""
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self._add(raw)

    def _add(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip("\r")
        now = time.monotonic()
        with self.lock:
            self.lines.append((now, text))
        if self.on_line:
            self.on_line(now, text)

    def _close_port(self) -> None:
        """Only from the reader thread (or after it ended): closing the port under its read
        would crash it (pyserial reads fd None)."""
        with self._io:
            ser, self._ser = self._ser, None
            if ser is not None:
                try:
                    ser.close()
                except Exception:
                    pass

    def write_line(self, text: str) -> bool:
        """False if the port is not open or the write failed; the reader reopens it."""
        with self._io:
            ser = self._ser
            if ser is None:
                return False
            try:
                ser.write(text.encode() + b"\n")
                return True
            except (OSError, self._serial.SerialException):
                return False

    def since(self, t: float, pattern: str | None = None) -> list[tuple[float, str, re.Match]]:
        rx = re.compile(pattern or ".*")
        with self.lock:
            lines = [x for x in self.lines if x[0] >= t]
        return [(when, text, m) for when, text in lines if (m := rx.search(text))]

    def wait_for(self, pattern: str, since: float, timeout: float) -> tuple[float, re.Match]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.since(since, pattern)
            if got:
                return got[0][0], got[0][2]
            time.sleep(0.02)
        raise TimeoutError(f"the DUT's console printed no {pattern!r} in {timeout} s")

    def asleep(self) -> bool:
        """The DUT's last rig mark was `deep_sleep` (not `boot`)."""
        marks = self.since(0, MARK)
        return bool(marks) and marks[-1][2].group(1) == "deep_sleep"

    def patterns(self, since: float) -> list[str]:
        """Names (firmware/feedback.py) of the patterns traced at or after `since`."""
        from firmware.feedback import NAMES

        got = (int(m.group(1)) for _t, _s, m in self.since(since, PATTERN))
        return [NAMES[n] for n in got if 0 < n < len(NAMES)]

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(2)
        self._close_port()
