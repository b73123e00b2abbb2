"""A board's identity when it is set up again: which device id it gets, and what becomes of
the old one on the hub.

A device the hub knows but never hears is reported missing to the county
(`supervision_missing`, after two heartbeats), so a board set up again (a wrong --room, a
board that failed its self-test) must not leave its old id behind. What is possible depends
on whether the hub has ever heard that id:

- never heard (the usual redo, before the hub was restarted; or an id added by hand with
  `python -m hub device add`): the board takes the id over. Its registration is replaced
  (a new key; the room, location and elder given now, the old ones where none is given),
  and the label stays right.
- heard: the id cannot be given again. The hub keeps, per id, which frame numbers it has
  accepted (its replay window, docs/protocol.md) and the platform knows the events by
  hub:id:number; an erased board numbers its frames from 1 again, so its first frames would
  be taken for replays and its alarms lost. The board gets a new id (and a new label) and
  the old registration is removed.
The board's old id is read from the board (its /config.json) before it is erased; when the
board does not answer (asleep, or already in its bootloader), from the visit's records by
the MAC esptool reads; when it was erased already (a separate `flash`), from the records by
its machine.unique_id(), which provision reads and keeps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from hub import config as hubconfig
from tools.installer import errors as E, records
from tools.installer.device import Device

UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Identity:
    device_id: int | None = None  # None: a new random id
    takeover: bool = False        # device_id is on this hub, never heard: re-registered
    old: str | None = None        # the board's previous id (8 hex digits), on this hub
    drop_old: bool = False        # remove `old` from the hub once the board has its new id


def last_heard(cfg: hubconfig.Config, device_id: int) -> str | None:
    """How we know the hub has heard the device, or None if it never has.

    Read-only: the running hub's status file, and its store (the replay window it keeps
    per device from the first frame it accepts on, the device's last_seen, its events).
    A store that cannot be read counts as heard: the safe side."""
    hexid = f"{device_id:08x}"
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        st = json.loads((cfg.data_dir / "status.json").read_text())
        for d in st.get("devices", []):
            if d.get("id") == hexid and d.get("last_seen"):
                return f"last heard {d['last_seen']}"
    db = cfg.data_dir / "hub.db"
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            # the window's name as hub/pipeline.py's HubCore._window_name makes it
            window = con.execute("SELECT 1 FROM state WHERE name = ?",
                                 (f"replay:{hexid}",)).fetchone()
            seen = con.execute("SELECT MAX(last_seen_ms) FROM devices WHERE device_id = ?",
                               (device_id,)).fetchone()[0]
            recv = con.execute("SELECT MAX(recv_ms) FROM events WHERE device_id = ?",
                               (device_id,)).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as e:
        return f"cannot tell: the hub's store {db} cannot be read ({e})"
    ms = max((x for x in (seen, recv) if x), default=None)
    if ms:
        when = dt.datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")
        return f"last heard {when}"
    return "its frame numbers are in the hub's store" if window else None


def hub_command(cfg: hubconfig.Config) -> str:
    """How to run the hub's CLI on this hub's config, as typed (sudo: its files are root's)."""
    return f"sudo {sys.executable} -m hub -c {cfg.path.resolve()}"


def check_id(cfg: hubconfig.Config, device_id: int) -> bool:
    """An id asked for with --id: True if it is on this hub and may be taken over (never
    heard), False if it is free; InstallerError if it cannot be used: the hub has heard it,
    also when it has been removed since (hub/registrations.py keeps its replay window)."""
    if not 0 < device_id <= 0xFFFFFFFF:
        raise E.InstallerError("id-taken", f"{device_id:x} is not a device id.",
                               "give 8 hex digits, not 00000000, or leave --id out")
    heard = last_heard(cfg, device_id)
    if heard is None:
        return device_id in cfg.devices
    hexid = f"{device_id:08x}"
    where = "is on this hub" if device_id in cfg.devices else (
        "was on this hub (removed: the hub keeps the frame numbers it heard)")
    raise E.InstallerError(
        "id-taken", f"Device {hexid} {where} and the hub has heard it ({heard}).",
        "leave --id out: the board gets a new id. A board set up again cannot take an id the "
        "hub has heard (it numbers its frames from 1 again, which the hub would take for "
        f"replays). To retire the old device: {hub_command(cfg)} device remove {hexid}")


def board_identity(dev: Device) -> str | None:
    """The device id in the board's /config.json (8 hex digits), None if it has none,
    UNREADABLE if the file is there but not understood."""
    if dev.sha256("config.json") is None:
        return None
    try:
        return "%08x" % int(json.loads(dev.read("config.json") or b"")["device_id"])
    except (ValueError, KeyError, TypeError):
        return UNREADABLE


def read_before_erase(port: str, hint: str, say: Callable[[str], None]) -> str | None:
    """The board's identity before `install` erases it; None if it has none or does not
    answer on its console (blank, in its bootloader, asleep): a short try, not a wait."""
    say("Reading the board's identity before erasing it...")
    try:
        with Device(port, timeout=1.0, safe_boot_hint=hint) as dev:
            return board_identity(dev)
    except E.InstallerError:
        say("(The board does not answer on its console: blank, in its bootloader or asleep. "
            "It is looked up in the visit's records by its chip.)")
        return None


def by_mac(visit: Path, mac: str, cfg: hubconfig.Config) -> str | None:
    """The id this visit last gave the board with this MAC (esptool's, at flash), if it is
    still on this hub."""
    if not mac or not mac.strip("0:"):
        return None  # no MAC (a simulated bootloader reports zeros)
    return _recorded(visit, cfg, lambda r: r.get("flash", {}).get("mac") == mac)


def by_uid(visit: Path, uid: str | None, cfg: hubconfig.Config) -> str | None:
    """The id this visit last gave the board with this machine.unique_id() (read by
    provision), if it is still on this hub: a board erased by a separate `flash` (or by
    hand) before `install --skip-flash` or `provision`."""
    if not uid or not uid.strip("0"):
        return None
    return _recorded(visit, cfg, lambda r: r.get("provision", {}).get("board_uid") == uid)


def _recorded(visit: Path, cfg: hubconfig.Config, match) -> str | None:
    if not visit.is_dir():
        return None
    found = [r for r in records.devices(visit) if match(r) and int(r["device"], 16) in
             cfg.devices]
    found.sort(key=lambda r: r.get("provision", {}).get("time", ""))
    return found[-1]["device"] if found else None


def board_uid(dev: Device) -> str | None:
    """machine.unique_id() in hex (the ESP32's base MAC), None if the board cannot say."""
    try:
        uid = dev.exec("import binascii, machine\n"
                       "print(binascii.hexlify(machine.unique_id()).decode())").strip()
    except E.InstallerError:
        return None
    return uid if uid and all(c in "0123456789abcdef" for c in uid) else None


def plan(cfg: hubconfig.Config, old: str, want: Identity, confirm: Callable[[str], bool],
         say: Callable[[str], None], *, erasing: bool) -> Identity:
    """Decide, asking where there is a choice (--yes: the first offer), what the board whose
    identity was `old` becomes. erasing: `install` erases it anyway (no "replace?")."""
    if old == UNREADABLE or int(old, 16) not in cfg.devices:
        what = "which cannot be read" if old == UNREADABLE else f"device {old}, not on this hub"
        if erasing:
            say(f"This board had an identity ({what}); erasing it replaces it.")
        elif not confirm(f"This board already has an identity ({what}). Replace it?"):
            raise E.InstallerError("cancelled", "Nothing was changed.")
        return want
    dev = cfg.devices[int(old, 16)]
    desc = f"device {old} of this hub ({dev.kind}{', ' + dev.room if dev.room else ''})"
    if want.device_id == dev.id:
        return want  # asked for with --id: check_id has allowed it
    heard = last_heard(cfg, dev.id)
    if want.device_id is None and heard is None and confirm(
            f"This board is {desc}, never heard by the hub yet. Set it up again as {old}? "
            "(Its registration is replaced: a new key; room, location and elder as given "
            "now, the old ones where none is given.)"):
        return replace(want, device_id=dev.id, takeover=True, old=old)
    if heard is not None:
        say(f"This board was {desc}; the hub has heard it ({heard}), so it gets a new id: "
            "an erased board numbers its frames from 1 again, which the hub would take for "
            "replays.")
    new = f"id {want.device_id:08x}" if want.device_id is not None else "a new id"
    if confirm(f"Give the board {new} and remove {old} from the hub (its registration and "
               "key; the old label goes)?"):
        return replace(want, old=old, drop_old=True)
    if confirm(f"Give the board {new} and leave {old} on the hub? (The hub reports {old} "
               "missing to the platform until it is removed.)"):
        return replace(want, old=old)
    raise E.InstallerError("cancelled", "Nothing was changed.")
