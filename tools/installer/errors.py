"""Every failure the installer can meet, said plainly: what happened and what to do.

The tools underneath (pyserial, esptool, mpremote) speak to firmware engineers; an
installer in an elder's flat needs "hold BOOT, tap RESET" rather than "Failed to connect
to ESP32: No serial data received". Each translation keeps the original text in
`detail` (shown with --verbose and saved in the records) and names a `code` the tests and
the records use.
"""

from __future__ import annotations

import errno
import re


class InstallerError(Exception):
    """A failure explained for the installer."""

    def __init__(self, code: str, what: str, todo: str = "", detail: str = ""):
        super().__init__(what)
        self.code, self.what, self.todo, self.detail = code, what, todo, detail

    def __str__(self) -> str:
        return self.what + (f"\n  What to do: {self.todo}" if self.todo else "")


DIALOUT = ("add yourself to the serial-port group once: sudo usermod -aG dialout $USER, "
           "then log out and in again (or run this command with sudo)")
BOOTLOADER = ("put the board into its bootloader by hand: hold its BOOT button (IO0 / IO9), "
              "tap RESET (EN / RST), then let BOOT go, and run the command again. Some "
              "cables only charge: if this keeps failing, try another cable")


def no_port(ports_seen: list[str] | None = None) -> InstallerError:
    seen = f" (serial ports present, none a known USB-serial chip: {', '.join(ports_seen)})" \
        if ports_seen else ""
    return InstallerError(
        "no-port", f"No board found on USB{seen}.",
        "plug the board in with a data USB cable (charge-only cables are common), wait two "
        "seconds and try again; or name the port with --port")


def port_denied(port: str, detail: str = "") -> InstallerError:
    return InstallerError("port-denied", f"Permission denied on {port}.", DIALOUT, detail)


def port_busy(port: str, detail: str = "") -> InstallerError:
    return InstallerError(
        "port-busy", f"{port} is in use by another program.",
        "close other programs that talk to the board (Thonny, Arduino IDE, screen, another "
        "terminal running this tool) and try again", detail)


def port_gone(port: str, detail: str = "") -> InstallerError:
    return InstallerError(
        "no-port", f"There is no board at {port} (unplugged, or another port?).",
        "check the cable, then run without --port to find the board", detail)


def from_serial(port: str, exc: BaseException) -> InstallerError:
    """An exception from opening or using a serial port (pyserial, mpremote, esptool)."""
    text = str(exc)
    num = getattr(exc, "errno", None)
    if num == errno.EACCES or "Permission denied" in text or "Errno 13" in text:
        return port_denied(port, text)
    if num == errno.ENOENT or "No such file" in text or "Errno 2]" in text:
        return port_gone(port, text)
    if num == errno.EBUSY or re.search(r"busy|exclusively lock|Resource temporarily", text):
        return port_busy(port, text)
    return InstallerError("serial", f"The serial connection to {port} failed.",
                          "unplug the board, plug it in again and retry", text)


def from_esptool(port: str, exc: BaseException) -> InstallerError:
    """esptool's FatalError (or any exception from a flash), translated."""
    text = str(exc)
    if text.startswith("Could not open") or "Errno" in text.split("\n", 1)[0]:
        return from_serial(port, exc)
    if "Failed to connect" in text or "Wrong boot mode" in text or "No serial data" in text:
        return InstallerError(
            "no-bootloader", "The board did not enter its bootloader (flashing mode).",
            BOOTLOADER, text)
    m = re.search(r"is not an? (ESP32[-\w]*) image|does not contain an? (ESP32[-\w]*) image",
                  text)
    if m:
        return InstallerError(
            "wrong-chip", f"This firmware file is not for this board's chip "
                          f"({m.group(1) or m.group(2)}).",
            "pick the MicroPython firmware built for this chip (see 'cache list')", text)
    if "Unexpected chip" in text or "autodetect" in text:
        return InstallerError("unknown-chip", "The board's chip is not one this tool knows.",
                              "check that it is an ESP32, ESP32-C3, -S3 or -C6 board", text)
    if "Serial data stream stopped" in text or "Invalid head of packet" in text or \
            "Timed out" in text or "timed out" in text:
        return InstallerError(
            "link-lost", "The connection dropped while flashing.",
            "unplug and replug the board, use a short cable straight into the computer (no "
            "hub), and try again with --baud 115200", text)
    return InstallerError("esptool", "Flashing failed.",
                          "run again with --verbose and keep the output for support", text)


def from_mpremote(port: str, exc: BaseException, kind_hint: str = "") -> InstallerError:
    """mpremote's TransportError and friends, translated."""
    text = str(exc)
    if "failed to access" in text or isinstance(exc, OSError) and exc.errno in (
            errno.EACCES, errno.ENOENT, errno.EBUSY):
        return from_serial(port, exc)
    if "could not enter raw repl" in text or "timeout waiting" in text:
        return InstallerError(
            "board-silent", "The board does not answer on its console.",
            "its app is probably running or asleep. Do a safe boot: " + (kind_hint or
            "hold the SOS button for 10 s while you reset it or put the batteries in (PIR "
            "sensors: press BOOT within 2 s after reset and hold it 3 s), until the LED blinks "
            "fast five times")
            + "; then run the command again", text)
    return InstallerError("board", "The board reported an error.",
                          "run again with --verbose and keep the output for support", text)
