"""Write a MicroPython firmware image onto a board with esptool.

    1. find the port (tools/installer/ports.py), connect and detect the chip (esptool's
       detect_chip: SYNC, then the chip id or the chip-detect magic register)
    2. find the image: --image FILE, else the newest one for that chip in the cache
    3. refuse an image built for another chip before anything is written (the image's
       extended header names its chip), and a chip carebeacon does not support
    4. ask before erasing / writing (unless --yes)
    5. write it at the chip's offset with esptool's own `write-flash` command (the CLI path,
       argument list built here), erasing the whole flash on a first install
       (`--erase-all`: no stale filesystem, config or key survives), verified by esptool
       against the chip's MD5 of what it wrote
    6. translate every failure into plain words (tools/installer/errors.py)

Offsets are MicroPython's (its download page): the ESP32's image starts with the second-
stage bootloader at 0x1000; the C3, S3 and C6 put it at 0x0. They equal esptool's
BOOTLOADER_FLASH_OFFSET for each chip (a test keeps them in step).

esptool's output goes to a buffer (shown with --verbose and kept in the record); the
installer sees stage lines and one progress bar.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from tools.installer import errors as E, paths, ports

OFFSETS = {"ESP32": 0x1000, "ESP32-C3": 0x0, "ESP32-S3": 0x0, "ESP32-C6": 0x0}
ESPTOOL_CHIP = {"ESP32": "esp32", "ESP32-C3": "esp32c3", "ESP32-S3": "esp32s3",
                "ESP32-C6": "esp32c6"}
IMAGE_CHIPS = {0: "ESP32", 2: "ESP32-S2", 5: "ESP32-C3", 9: "ESP32-S3", 12: "ESP32-C2",
               13: "ESP32-C6", 16: "ESP32-H2"}
DEFAULT_BAUD = 460800
Progress = Callable[[int, int, str], None]


def cache_dir() -> Path:
    return paths.cache_dir()  # also under sudo: the invoking user's (tools/installer/paths.py)


def image_chip(data: bytes, name: str = "the image") -> str:
    """The chip an ESP image is built for, from its extended header (chip id)."""
    if len(data) < 24 or data[0] != 0xE9:
        raise E.InstallerError(
            "not-firmware", f"{name} is not an ESP32 firmware image.",
            "use the MicroPython .bin for your board from micropython.org/download (the "
            "whole-flash image, not an app-only file)")
    cid = int.from_bytes(data[12:14], "little")
    if cid not in IMAGE_CHIPS:
        raise E.InstallerError("not-firmware", f"{name} names an unknown chip (id {cid}).")
    return IMAGE_CHIPS[cid]


def _version_key(path: Path) -> tuple:
    m = re.search(r"v(\d+)\.(\d+)(?:\.(\d+))?", path.name)
    return (tuple(int(x or 0) for x in m.groups()) if m else (0, 0, 0), path.stat().st_mtime)


def cached_images(directory: Path | None = None) -> list[tuple[Path, str]]:
    """(file, chip) for every firmware image in the cache, newest version last."""
    d = (directory or cache_dir()) / "firmware"
    out = []
    for p in sorted(d.glob("*.bin"), key=_version_key) if d.is_dir() else []:
        try:
            out.append((p, image_chip(p.read_bytes()[:64], p.name)))
        except E.InstallerError:
            continue
    return out


def pick_image(chip: str, image: str | Path | None, directory: Path | None = None) -> Path:
    if image:
        p = Path(image)
        if not p.is_file():
            raise E.InstallerError("no-image", f"There is no firmware file {p}.",
                                   "check the path, or leave --image out to use the cache")
        return p
    found = [p for p, c in cached_images(directory) if c == chip]
    if not found:
        raise E.InstallerError(
            "no-image", f"No MicroPython firmware for the {chip} in the cache "
                        f"({(directory or cache_dir()) / 'firmware'}).",
            "download it (micropython.org/download) and add it with "
            "'python -m tools.installer cache add FILE', or give --image FILE")
    return found[-1]


def esptool_argv(port: str, chip: str, image: Path, *, erase: bool, baud: int = DEFAULT_BAUD,
                 before: str = "default-reset", after: str = "hard-reset") -> list[str]:
    """The esptool command line for one flash (also what an engineer would type)."""
    if chip not in OFFSETS:
        raise unsupported(chip)
    argv = ["--chip", ESPTOOL_CHIP[chip], "--port", port, "--baud", str(baud),
            "--before", before, "--after", after, "write-flash"]
    if erase:
        argv.append("--erase-all")
    return argv + [f"{OFFSETS[chip]:#x}", str(image)]


def unsupported(chip: str) -> E.InstallerError:
    return E.InstallerError(
        "unsupported-chip", f"The board has an {chip}: carebeacon runs on the ESP32, "
                            "ESP32-C3, -S3 and -C6 (with Bluetooth LE).",
        "use one of the boards in boards/ (docs/device-behaviour.md)")


class _Log:
    """esptool's logger while the installer runs it: text kept, progress forwarded."""

    def __init__(self, progress: Progress | None):
        self.lines: list[str] = []
        self.progress = progress

    def print(self, *args, **kwargs):
        self.lines.append(" ".join(str(a) for a in args) + kwargs.get("end", "\n"))

    def note(self, message):
        self.lines.append(f"Note: {message}\n")

    def warning(self, message):
        self.lines.append(f"Warning: {message}\n")

    def error(self, message):
        self.lines.append(f"Error: {message}\n")

    def stage(self, finish=False):
        pass

    def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
        if self.progress is not None:
            self.progress(cur_iter, total_iters, prefix.strip())

    def set_verbosity(self, verbosity):
        pass

    @property
    def text(self) -> str:
        return "".join(self.lines)


class _Quiet:
    def __init__(self, progress: Progress | None):
        from esptool.logger import TemplateLogger

        self.log = type("InstallerLog", (_Log, TemplateLogger), {})(progress)

    def __enter__(self):
        from esp_pylib.logger import EspLog
        from esptool.logger import log

        self._old = EspLog.instance
        log.set_logger(self.log)
        return self.log

    def __exit__(self, *exc):
        from esp_pylib.logger import EspLog

        EspLog.instance = self._old


def detect(port: str, *, before: str = "default-reset", attempts: int = 7) -> dict:
    """Connect, detect the chip, read its MAC; the port is closed again afterwards."""
    from esptool.cmds import detect_chip

    with _Quiet(None) as log:
        try:
            esp = detect_chip(port, 115200, before, connect_attempts=attempts)
        except Exception as e:  # noqa: BLE001  (esptool raises FatalError, OSError, ...)
            raise E.from_esptool(port, e) from e
        try:
            mac = ":".join(f"{b:02x}" for b in esp.read_mac())
            return {"chip": esp.CHIP_NAME, "description": esp.get_chip_description(),
                    "mac": mac, "log": log.text}
        finally:
            esp._port.close()


def flash(port: str | None, image: str | Path | None = None, *, erase: bool = True,
          baud: int = DEFAULT_BAUD, attempts: int = 7, cache: Path | None = None,
          confirm: Callable[[str], bool] = lambda _q: True,
          progress: Progress | None = None, say: Callable[[str], None] = print,
          on_chip: Callable[[dict], None] | None = None) -> dict:
    """Flash one board; returns the record of what was done (raises InstallerError).

    on_chip(info) runs once the chip is known (chip, MAC), before anything is asked or
    written: `install` looks the board up in the visit's records by its MAC there."""
    port = ports.find_port(port)
    pty = ports.is_pty(port)  # no DTR/RTS: the board must already be in its bootloader
    before, after = ("no-reset", "no-reset") if pty else ("default-reset", "hard-reset")
    say(f"Connecting to the board on {port}...")
    info = detect(port, before=before, attempts=attempts)
    chip = info["chip"]
    say(f"Found an {chip} ({info['description']}), MAC {info['mac']}.")
    if chip not in OFFSETS:
        raise unsupported(chip)
    if on_chip is not None:
        on_chip(info)
    path = pick_image(chip, image, cache)
    data = path.read_bytes()
    built_for = image_chip(data, path.name)
    if built_for != chip:
        raise E.InstallerError(
            "wrong-chip", f"{path.name} is MicroPython for the {built_for}, but this board "
                          f"has an {chip}. Nothing was written.",
            f"use the firmware for the {chip} (see 'python -m tools.installer cache list')")
    question = (f"Write {path.name} ({len(data) // 1024} KiB, MicroPython for the {chip}) at "
                f"{OFFSETS[chip]:#x}" + (", ERASING everything on the board first (files, "
                                         "config, key)" if erase else "") + "?")
    if not confirm(question):
        raise E.InstallerError("cancelled", "Nothing was written.")
    argv = esptool_argv(port, chip, path, erase=erase, baud=baud, before=before, after=after)
    say("Erasing and writing..." if erase else "Writing...")
    import esptool

    with _Quiet(progress) as log:
        try:
            esptool.main(argv)
        except SystemExit as e:
            if e.code:
                raise E.from_esptool(port, RuntimeError(log.text[-2000:])) from e
        except Exception as e:  # noqa: BLE001
            raise E.from_esptool(port, e) from e
    if "Hash of data verified" not in log.text:
        raise E.InstallerError("verify-failed", "esptool did not confirm what it wrote.",
                               "flash again; if it repeats, try another cable", log.text)
    if pty:
        say("Written and verified. Reset the board (RESET button, or unplug and replug it).")
    else:
        say("Written and verified; the board has been reset and starts MicroPython.")
    return {"port": port, "chip": chip, "mac": info["mac"], "image": path.name,
            "image_sha256": hashlib.sha256(data).hexdigest(), "offset": OFFSETS[chip],
            "erased": erase, "esptool": ["esptool", *argv], "log": log.text}
