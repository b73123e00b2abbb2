"""Give a deployed board its identity and key, and register it with the hub.

    1. read the hub's config (hub.toml + secrets file): household, devices already there
    2. check the request (kind, board file, settings, room, location; `install` runs the
       same checks before it erases anything), pick a device id nobody uses (32 bits from
       the operating system's cryptographic random source, never 0); a board that had an
       identity on this hub keeps it or leaves no stale registration behind
       (tools/installer/identity.py)
    3. connect to the board (mpremote) before anything is written anywhere
    4. register the device with the hub (hub/cli.py add_device: hub.toml block + the key
       generated there with secrets.token_hex(16), a 128-bit key from the same source, in
       the 0600 secrets file)
    5. write /config.json in exactly the format firmware/config.py reads, checked first by
       that very parser on this computer, then by hash on the board, then loaded on the
       board by the firmware's own code; if the board part fails the hub registration is
       undone
    6. reset the board (it starts with a heartbeat at once), make its label, keep the
       record (no key anywhere in it, nor on screen)
The running hub picks the device up when restarted (systemctl restart carebeacon-hub).
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from firmware import config as fwconfig
from hub import cli as hubcli, config as hubconfig, stored_settings
from tools.installer import errors as E, identity as ident, label, ports, records
from tools.installer.deploy import board_json, safe_boot_hint
from tools.installer.device import Device
from tools.installer.identity import Identity

DEFAULT_BOARD = {"button": "esp32c3-supermini-button", "pir": "esp32c3-supermini-pir-am312",
                 "bracelet": "m5stickc-plus2-bracelet"}
SETTINGS = {f[0]: f for f in fwconfig.FIELDS}


def load_hub(hub_config: str | Path, secrets_file: str | Path | None = None) -> hubconfig.Config:
    try:
        return hubconfig.load(hub_config, secrets_file)
    except hubconfig.ConfigError as e:
        if "permission denied" in str(e):  # /etc/carebeacon is root's (and the hub's)
            todo = (f"run the command with sudo: sudo {sys.executable} -m tools.installer "
                    "... (docs/installer.md)")
        else:
            todo = "fix it (python -m hub check-config), or name it with --hub-config"
        raise E.InstallerError("hub-config", f"The hub's configuration cannot be used: {e}",
                               todo) from e


def new_device_id(taken: set[int]) -> int:
    while True:
        d = secrets.randbits(32)
        if d and d not in taken:
            return d


def parse_settings(pairs: list[str]) -> dict[str, int | bool]:
    """--set name=value pairs for the optional config keys (checked by the firmware's parser)."""
    out: dict[str, int | bool] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or (name not in SETTINGS and name != "log"):
            raise E.InstallerError(
                "bad-setting", f"Unknown setting {pair!r}.",
                "use name=value with one of: " + ", ".join(sorted([*SETTINGS, "log"])))
        if name == "log":
            out[name] = value.lower() in ("1", "true", "yes")
            continue
        try:
            out[name] = int(value)
        except ValueError:
            _n, default, lo, hi, why = SETTINGS[name]
            raise E.InstallerError(
                "bad-setting", f"--set {name}={value}: {name} is a whole number ({why}).",
                f"give a number from {lo} to {hi} (default {default}), e.g. "
                f"--set {name}={default}") from None
    return out


def config_text(device_id: int, key: str, kind: str, board: str, settings: dict) -> str:
    """/config.json, refused here by the firmware's own parser if anything is off."""
    d = {"device_id": device_id, "key": key, "kind": kind, "board": board, **settings}
    text = json.dumps(d, separators=(",", ":")) + "\n"
    try:
        fwconfig.parse(json.loads(text), "/config.json", text)
    except fwconfig.ConfigError as e:
        raise E.InstallerError("bad-setting", f"The device config would be refused: {e}",
                               "change the --set value named above") from e
    return text


def check_request(kind: str, board: str | None, settings: dict, room: str = "",
                  location: str = "", floor_min: int | None = None) -> str:
    """Everything about the request that can be refused before any board is touched: the
    kind, the board file and whether it fits the kind, the settings (the firmware's own
    parser; a summary interval shorter than the hub's inactivity floor `floor_min`), room
    and location (the hub's limits). Returns the board file's name."""
    if kind not in DEFAULT_BOARD:
        raise E.InstallerError("no-kind", "What kind of device is it?",
                               "give --kind button, pir or bracelet")
    board = board or DEFAULT_BOARD[kind]
    kinds = board_json(board).get("kinds", [])
    if kind not in kinds:
        raise E.InstallerError("wrong-kind", f"Board {board} cannot be a {kind} "
                                             f"(it can be: {', '.join(kinds)}).",
                               "pick the board file for this hardware with --board")
    config_text(1, "0" * 32, kind, board, settings)
    summary = settings.get("summary_min")
    if floor_min is not None and summary is not None and summary >= floor_min:
        # a device reports ongoing motion only in its summaries: the hub could hear nothing
        # of a resident moving about for a whole interval and call them still
        raise E.InstallerError(
            "bad-setting", f"summary_min={summary} is not shorter than the hub's inactivity "
            f"floor ({floor_min} min): a resident moving about could look still to it.",
            f"give summary_min below {floor_min} (default 15), or raise the floor "
            "(docs/inactivity.md, 'The floor and the activity interval')")
    for name, value in (("room", room), ("location", location)):
        why = hubconfig.device_text_problem(name, value)
        if why:
            raise E.InstallerError("bad-setting", f"--{name}: {why}", f"shorten the {name}")
    return board


def provision(port: str | None, kind: str, hub_config: str | Path, *, board: str | None = None,
              room: str = "", location: str = "", elder: str = "",
              entrance: bool | None = None, settings: dict | None = None,
              device_id: int | None = None, identity: Identity | None = None,
              secrets_file: str | Path | None = None, records_dir: str | Path | None = None,
              reset: bool = True, timeout: float = 10.0,
              confirm: Callable[[str], bool] = lambda _q: True,
              say: Callable[[str], None] = print) -> dict:
    """Provision one board; returns its record (also saved in the visit's records).

    device_id: --id (may take over a registered id the hub has never heard); identity: what
    `install` decided about the board's identity before erasing it (tools/installer/
    identity.py); else the board's own /config.json is read and asked about."""
    cfg = load_hub(hub_config, secrets_file)
    settings = dict(settings or {})
    board = check_request(kind, board, settings, room, location,
                          stored_settings.floor_in_force(cfg))
    if identity is None:
        identity = Identity(device_id, takeover=device_id is not None and
                            ident.check_id(cfg, device_id))
    port = ports.find_port(port)
    say(f"Connecting to the board on {port}...")
    with Device(port, timeout=timeout, safe_boot_hint=safe_boot_hint(board)) as dev:
        if dev.sha256("main.py") is None or dev.sha256(f"boards/{board}.json") is None:
            raise E.InstallerError("not-deployed", f"The board has no carebeacon app for {board}.",
                                   "deploy it first: python -m tools.installer deploy "
                                   f"--board {board}")
        old, uid = ident.board_identity(dev), ident.board_uid(dev)
        if old is not None and (identity.device_id is None or
                                old != f"{identity.device_id:08x}"):
            identity = ident.plan(cfg, old, identity, confirm, say, erasing=False)
        elif old is None and identity.old is None:  # blank: erased since it was set up?
            found = ident.by_uid(records.visit_path(records_dir, cfg.household), uid, cfg)
            if found is not None and (identity.device_id is None or
                                      found != f"{identity.device_id:08x}"):
                say(f"The visit's records know this board (unique id {uid}) as {found}.")
                identity = ident.plan(cfg, found, identity, confirm, say, erasing=True)
        device_id = identity.device_id or new_device_id(set(cfg.devices))
        hexid = f"{device_id:08x}"
        prev = cfg.devices.get(device_id) if identity.takeover else None
        prev_key = cfg.keys.get(device_id) if prev else None
        if prev is not None:  # the taken-over registration: its fields where none is given
            room, location, elder = room or prev.room, location or prev.location, \
                elder or prev.elder
            entrance = prev.entrance if entrance is None else entrance
            if "heartbeat_min" not in settings and prev.heartbeat_min != 60:
                settings["heartbeat_min"] = prev.heartbeat_min  # the hub supervises by it
        hb = int(settings.get("heartbeat_min", 60))
        text = config_text(device_id, "0" * 32, kind, board, settings)
        if prev is not None:
            hubcli.remove_device(cfg, hexid, secrets_file=secrets_file)
            say(f"Device {hexid} was on this hub, never heard: its registration is replaced.")
        try:
            _dev, key, sec = hubcli.add_device(
                load_hub(hub_config, secrets_file), hexid, kind, room=room,
                location=location, elder=elder, heartbeat_min=hb, entrance=bool(entrance),
                secrets_file=secrets_file)
        except hubconfig.ConfigError as e:
            _restore(hub_config, secrets_file, prev, prev_key)
            raise E.InstallerError("hub-config", f"Could not register the device: {e}") from e
        say(f"Registered {kind} {hexid} with hub {cfg.hub_id} (household {cfg.household}); "
            f"its key is in {sec}.")
        try:
            text = config_text(device_id, key, kind, board, settings)
            digest = dev.write_verified("config.json", text.encode())
            got = dev.exec("from firmware import config\nc = config.load('/config.json')\n"
                           "print(c.device_id, c.kind, c.board)").split()
            if got != [str(device_id), kind, board]:
                raise E.InstallerError("config-check", "The board read back another config.",
                                       "provision again", " ".join(got))
        except BaseException:
            hubcli.remove_device(load_hub(hub_config, secrets_file), hexid,
                                 secrets_file=secrets_file)
            _restore(hub_config, secrets_file, prev, prev_key)
            say(f"The hub registration of {hexid} was undone" +
                (" (the one it replaced is back)." if prev else "."))
            raise
        say("Wrote /config.json; the board read it back with the firmware's own parser.")
        if reset:
            dev.reset()
            say("The board has been reset: it starts its app and reports to the hub.")
    dropped = _old_registration(hub_config, secrets_file, identity, hexid, say)
    prov = {"kind": kind, "board": board, "room": room, "location": location, "elder": elder,
            "entrance": bool(entrance), "household": cfg.household, "hub": cfg.hub_id,
            "settings": {"heartbeat_min": hb, **settings}, "config_sha256": digest,
            "port": port, "board_uid": uid, "time": records.now_iso()}
    if identity.old and identity.old != hexid:
        prov["replaces"] = identity.old
    visit = records.visit_dir(records_dir, cfg.household)
    if dropped and records.load(visit, dropped):  # off the table and the label sheet
        records.update(visit, dropped, removed={"time": records.now_iso(), "now": hexid})
    rec = records.update(visit, hexid, provision=prov, **records.claim_pending(visit, port))
    png = label.png(device_id, kind, visit / "labels" / f"{hexid}.png")
    sheet = label.sheet(records.devices(visit), visit / "labels.html",
                        f"carebeacon labels - household {cfg.household}")
    say(f"Label: {png} (sheet to print: {sheet}).")
    say("Restart the hub so it knows the new device: sudo systemctl restart carebeacon-hub")
    del key, text  # never kept, never printed
    return {**rec, "label_png": str(png), "sheet": str(sheet)}


def _restore(hub_config, secrets_file, prev: hubconfig.Device | None, key: bytes | None) -> None:
    """Put a taken-over registration back as it was (its key too)."""
    if prev is None or key is None:
        return
    hubcli.add_device(load_hub(hub_config, secrets_file), prev.hex, prev.kind, room=prev.room,
                      location=prev.location, elder=prev.elder,
                      heartbeat_min=prev.heartbeat_min, entrance=prev.entrance, key=key.hex(),
                      secrets_file=secrets_file)


def _old_registration(hub_config, secrets_file, identity: Identity, hexid: str,
                      say: Callable[[str], None]) -> str | None:
    """The board's previous id on this hub, now that the board has `hexid`: removed (and
    returned), or said to stay (always said: also with --yes)."""
    old = identity.old
    if not old or old == hexid:
        return None
    cfg = load_hub(hub_config, secrets_file)
    if int(old, 16) not in cfg.devices:
        return None
    if not identity.drop_old:
        say(f"Device {old} (this board's old id) stays on the hub, which reports it missing "
            f"to the platform until it is removed: {ident.hub_command(cfg)} device remove {old}")
        return None
    hubcli.remove_device(cfg, old, secrets_file=secrets_file)
    say(f"Removed this board's old id {old} from the hub (registration and key). "
        f"Put the new label on the device: {hexid}.")
    return old
