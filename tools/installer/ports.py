"""Finding the board's serial port, and checking it can be opened, before any tool tries.

A board shows up as a USB serial port: the ESP32-C3/S3/C6's own USB (Espressif, 303a) or
a USB-serial chip on the board (CP210x, CH340/CH9102, FTDI, Prolific). With exactly one
such port the installer never has to name it.
"""

from __future__ import annotations

import os
import stat

from tools.installer import errors as E

KNOWN_VIDS = {
    0x303A: "Espressif USB",
    0x10C4: "Silicon Labs CP210x",
    0x1A86: "WCH CH340/CH9102",
    0x0403: "FTDI",
    0x067B: "Prolific",
}


def is_pty(port: str) -> bool:
    """A pseudo-terminal (a simulated board): no DTR/RTS lines to reset the chip with."""
    if not port.startswith("/dev/pts/"):
        return False
    try:
        st = os.stat(port)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 136


def check_port(port: str) -> None:
    """Raise a plain InstallerError if the port is missing or not ours to open."""
    if "://" in port:
        return
    if not os.path.exists(port):
        raise E.port_gone(port)
    if not os.access(port, os.R_OK | os.W_OK):
        raise E.port_denied(port)


def find_port(port: str | None = None, comports=None) -> str:
    """The given port (checked), or the one USB serial board plugged in."""
    if port:
        check_port(port)
        return port
    if comports is None:
        from serial.tools import list_ports

        comports = list_ports.comports()
    all_ports = list(comports)
    boards = [p for p in all_ports if getattr(p, "vid", None) in KNOWN_VIDS]
    if not boards:
        raise E.no_port([p.device for p in all_ports])
    if len(boards) > 1:
        names = ", ".join(f"{p.device} ({KNOWN_VIDS[p.vid]})" for p in boards)
        raise E.InstallerError(
            "many-ports", f"Several boards are plugged in: {names}.",
            "unplug all but the one to set up, or name it with --port")
    check_port(boards[0].device)
    return boards[0].device
