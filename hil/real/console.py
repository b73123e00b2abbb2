"""The DUT's serial console over USB (pyserial): every line it prints, timestamped.

    con = Console("/dev/ttyACM0", on_line=None).start()
    con.wait_for(r"carebeacon: pattern (\\d+)", since=t0, timeout=10)
    con.write_line("I 1000,8,-3;998,6,-1")      # IMU samples for device/imu_serial.py

The firmware prints `carebeacon: <what> <value>` for traces and logs when its config has
"log": true (firmware/hal/esp32.py); device/rig_main.py adds `carebeacon: rig boot <cause>`
and `carebeacon: rig deep_sleep <ms>`. A board whose USB is the chip's own (ESP32-C3 USB
Serial/JTAG) drops off the bus in deep sleep: the reader reopens the port when it comes
back and keeps the lines in order (HW-CHECK on each board).
"""

from __future__ import annotations

import re
import threading
import time


class Console:
    def __init__(self, port: str, baud: int = 115200, on_line=None):
        self.port, self.baud, self.on_line = port, baud, on_line
        self.lines: list[tuple[float, str]] = []  # (monotonic, text)
        self.lock = threading.Lock()
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
        return self._serial.Serial(self.port, self.baud, timeout=0.2)

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
            try:
                chunk = self._ser.read(256)
            except (OSError, self._serial.SerialException):
                self._close_port()
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                text = raw.decode(errors="replace").rstrip("\r")
                now = time.monotonic()
                with self.lock:
                    self.lines.append((now, text))
                if self.on_line:
                    self.on_line(now, text)

    def _close_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:
                pass

    def write_line(self, text: str) -> bool:
        ser = self._ser
        if ser is None:
            return False
        try:
            ser.write(text.encode() + b"\n")
            return True
        except (OSError, self._serial.SerialException):
            self._close_port()
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

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(2)
        self._close_port()
