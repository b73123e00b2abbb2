"""Put the device app onto a board that runs MicroPython, and prove what is there.

    1. connect over the raw REPL (mpremote's transport) and ask the board for its
       MicroPython version and .mpy format (sys.implementation)
    2. list what the app needs (tools/installer/plan.py: main.py, firmware/, shared/, the
       board file), check the firmware has every module the app imports and take the ones
       it lacks from the cache (<cache>/lib: aioble and the like)
    3. compile everything but main.py to .mpy with mpy-cross for that format
    4. delete stale files in firmware/, shared/ and boards/ (an old .py would shadow its new
       .mpy: MicroPython imports x.py before x.mpy), write what changed, skip what the board
       already holds (same SHA-256)
    5. verify every file by SHA-256 computed on the board
    6. load the board file on the board with the firmware's own code (firmware/board.py)
/config.json (written by provision) and anything outside those folders is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from firmware.hal import SAFE_BOOT_HOLD_MS
from firmware.safeboot import SOS_HOLD_MS
from tools.installer import errors as E, plan, ports
from tools.installer.device import Device
from tools.installer.flash import cache_dir

MANAGED = ("firmware", "shared", "boards")
Progress = Callable[[int, int, str], None]


def board_json(board: str) -> dict:
    path = plan.REPO / "boards" / f"{board}.json"
    if not path.is_file():
        plan.app_files(board)  # raises the plain "no such board file" error
    return json.loads(path.read_text())


def safe_boot_hint(board: str) -> str:
    """How to get the REPL back on this board when its app is running or asleep."""
    try:
        bj = board_json(board)
        sb = bj["safe_boot"]
    except (E.InstallerError, KeyError, ValueError):
        return ""
    # firmware/safeboot.py hold_ms(): 10 s where the input is an SOS button, else 3 s.
    sos = sb.get("input") == "button" and any(k != "pir" for k in bj.get("kinds", ()))
    secs = SOS_HOLD_MS // 1000 if sos else SAFE_BOOT_HOLD_MS // 1000
    what = "SOS button" if sos else "BOOT button"  # (a PIR board's "button" is its BOOT key)
    if sb.get("window_ms"):
        return (f"reset the board, then within {sb['window_ms'] / 1000:g} s press its {what} "
                f"and hold it for {secs} s, until the LED blinks fast five times")
    return (f"hold the {what} while you reset the board (or put the batteries in) and keep "
            f"holding for {secs} s, until the LED blinks fast five times")


def deploy(port: str | None, board: str, *, require: tuple[str, ...] = (),
           cache: Path | None = None, reset: bool = False, timeout: float = 10.0,
           progress: Progress | None = None, say: Callable[[str], None] = print) -> dict:
    """Deploy the app for `board`; returns the record (every file with its SHA-256)."""
    cache = cache or cache_dir()
    port = ports.find_port(port)
    items, external = plan.app_files(board)
    say(f"Connecting to the board on {port}...")
    with Device(port, timeout=timeout, safe_boot_hint=safe_boot_hint(board)) as dev:
        info = dev.info()
        say(f"The board runs MicroPython {info['micropython']} ({info['platform']}).")
        arch = plan.check_abi(info["mpy"], info["micropython"])
        missing = dev.missing(sorted(external | set(require)))
        libs: list[str] = []
        for name in missing:
            files = plan.lib_files(name, cache)
            if not files:
                raise E.InstallerError(
                    "missing-module", f"The app needs the module '{name}', which this "
                                      "MicroPython firmware does not include.",
                    f"put '{name}' (a .py file or a package folder, e.g. from micropython-lib)"
                    f" into {cache / 'lib'} with 'python -m tools.installer cache add', or "
                    "flash a firmware that includes it")
            items += files
            libs.append(name)
        say(f"Compiling {sum(i.compile for i in items)} modules for .mpy v{info['mpy'] & 0xFF}"
            f"{' (' + arch + ')' if arch else ''}...")
        plan.compile_all(items, arch, cache / "mpy")
        record = _sync(dev, items, libs, progress, say)
        say("Checking the board file with the firmware's own code on the board...")
        out = dev.exec(f"from firmware import board\nb = board.load('/boards/{board}.json')\n"
                       "print(b.name, b.chip, ' '.join(b.kinds))").split()
        if not out or out[0] != board:
            raise E.InstallerError("board-check", "The board could not read its board file.",
                                   "deploy again", " ".join(out))
        if reset:
            dev.reset()
            say("The board has been reset.")
    record.update(port=port, board=board, micropython=info["micropython"],
                  mpy=info["mpy"], arch=arch, libs=libs, kinds=out[2:])
    return record


def _sync(dev: Device, items: list[plan.Item], libs: list[str], progress: Progress | None,
          say: Callable[[str], None]) -> dict:
    existing: dict[str, int] = {}
    for top in MANAGED + tuple(f"lib/{n}" for n in libs):
        existing.update(dev.tree(top))
    for name in libs:
        existing.update({k: v for k, v in dev.tree("lib").items() if k == f"lib/{name}.mpy"})
    wanted = {i.dest for i in items}
    stale = sorted(p for p in existing if p not in wanted and p.split("/")[0] in MANAGED)
    for path in stale:
        dev.remove(path)
    if stale:
        say(f"Removed {len(stale)} old file(s): {', '.join(stale)}.")
    hashes: dict[str, str] = {}
    todo = []
    for item in items:
        size = existing.get(item.dest, 0)  # 0: not listed (main.py) or size unknown
        if size in (0, len(item.data)) and dev.sha256(item.dest) == item.sha256:
            hashes[item.dest] = item.sha256
        else:
            todo.append(item)
    total = sum(len(i.data) for i in todo)
    if todo:
        say(f"Writing {len(todo)} file(s), {(total + 1023) // 1024} KiB "
            f"({len(items) - len(todo)} already up to date)...")
    else:
        say(f"All {len(items)} files are already up to date.")
    made: set[str] = set()
    done = 0
    for item in todo:
        dev.mkdirs(item.dest, made)
        base = done
        dev.write(item.dest, item.data,
                  (lambda n, b=base, d=item.dest: progress and progress(b + n, total, d)))
        done += len(item.data)
    say("Verifying every file by SHA-256 on the board...")
    for item in todo:
        got = dev.sha256(item.dest)
        if got != item.sha256:
            raise E.InstallerError(
                "verify-failed", f"{item.dest} on the board is not what was sent.",
                "deploy again; if it repeats, try another cable or USB port",
                f"sha256 sent {item.sha256}, on the board {got}")
        hashes[item.dest] = got
    return {"files": {i.dest: {"sha256": hashes[i.dest], "bytes": len(i.data)} for i in items},
            "written": [i.dest for i in todo], "removed": stale}
