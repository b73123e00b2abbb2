"""Give a deployed board its identity and key, and register it with the hub.

    1. read the hub's config (hub.toml + secrets file): household, devices already there
    2. check the board file fits the kind, pick a device id nobody uses (32 bits from the
       operating system's cryptographic random source, never 0)
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
from collections.abc import Callable
from pathlib import Path

from firmware import config as fwconfig
from hub import cli as hubcli, config as hubconfig
from tools.installer import errors as E, label, ports, records
from tools.installer.deploy import board_json, safe_boot_hint
from tools.installer.device import Device

DEFAULT_BOARD = {"button": "esp32c3-supermini-button", "pir": "esp32c3-supermini-pir-am312",
                 "bracelet": "m5stickc-plus2-bracelet"}
SETTINGS = {f[0]: f for f in fwconfig.FIELDS}


def load_hub(hub_config: str | Path, secrets_file: str | Path | None = None) -> hubconfig.Config:
    try:
        return hubconfig.load(hub_config, secrets_file)
    except hubconfig.ConfigError as e:
        raise E.InstallerError("hub-config", f"The hub's configuration cannot be used: {e}",
                               "fix it (python -m hub check-config), or name it with "
                               "--hub-config") from e


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
        out[name] = value.lower() in ("1", "true", "yes") if name == "log" else int(value)
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


def provision(port: str | None, kind: str, hub_config: str | Path, *, board: str | None = None,
              room: str = "", location: str = "", elder: str = "", entrance: bool = False,
              settings: dict | None = None, device_id: int | None = None,
              secrets_file: str | Path | None = None, records_dir: str | Path | None = None,
              reset: bool = True, timeout: float = 10.0,
              confirm: Callable[[str], bool] = lambda _q: True,
              say: Callable[[str], None] = print) -> dict:
    """Provision one board; returns its record (also saved in the visit's records)."""
    cfg = load_hub(hub_config, secrets_file)
    board = board or DEFAULT_BOARD[kind]
    kinds = board_json(board).get("kinds", [])
    if kind not in kinds:
        raise E.InstallerError("wrong-kind", f"Board {board} cannot be a {kind} "
                                             f"(it can be: {', '.join(kinds)}).",
                               "pick the board file for this hardware with --board")
    if device_id is None:
        device_id = new_device_id(set(cfg.devices))
    elif device_id in cfg.devices or not 0 < device_id <= 0xFFFFFFFF:
        raise E.InstallerError("id-taken", f"Device id {device_id:08x} is already on this hub "
                                           "(or not a valid id).",
                               "leave --id out to get a fresh one")
    settings = dict(settings or {})
    hb = int(settings.get("heartbeat_min", 60))
    config_text(device_id, "0" * 32, kind, board, settings)  # refuse bad settings early
    port = ports.find_port(port)
    hexid = f"{device_id:08x}"
    say(f"Connecting to the board on {port}...")
    with Device(port, timeout=timeout, safe_boot_hint=safe_boot_hint(board)) as dev:
        if dev.sha256("main.py") is None or dev.sha256(f"boards/{board}.json") is None:
            raise E.InstallerError("not-deployed", f"The board has no carebeacon app for {board}.",
                                   "deploy it first: python -m tools.installer deploy "
                                   f"--board {board}")
        if dev.sha256("config.json") is not None:
            try:
                old = dev.exec("from firmware import config\n"
                               "print('%08x' % config.load('/config.json').device_id)").strip()
            except E.InstallerError:
                old = "unreadable"
            if not confirm(f"This board already has an identity (device {old}). Replace it? "
                           f"(Device {old} stays on the hub until removed: python -m hub "
                           f"device remove {old})"):
                raise E.InstallerError("cancelled", "Nothing was changed.")
        try:
            _dev, key, sec = hubcli.add_device(
                cfg, hexid, kind, room=room, location=location, elder=elder, heartbeat_min=hb,
                entrance=entrance, secrets_file=secrets_file)
        except hubconfig.ConfigError as e:
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
            say(f"The hub registration of {hexid} was undone.")
            raise
        say("Wrote /config.json; the board read it back with the firmware's own parser.")
        if reset:
            dev.reset()
            say("The board has been reset: it starts its app and reports to the hub.")
    prov = {"kind": kind, "board": board, "room": room, "location": location, "elder": elder,
            "entrance": entrance, "household": cfg.household, "hub": cfg.hub_id,
            "settings": {"heartbeat_min": hb, **settings}, "config_sha256": digest,
            "port": port, "time": records.now_iso()}
    visit = records.visit_dir(records_dir, cfg.household)
    rec = records.update(visit, hexid, provision=prov, **records.claim_pending(visit, port))
    png = label.png(device_id, kind, visit / "labels" / f"{hexid}.png")
    sheet = label.sheet(records.devices(visit), visit / "labels.html",
                        f"carebeacon labels - household {cfg.household}")
    say(f"Label: {png} (sheet to print: {sheet}).")
    say("Restart the hub so it knows the new device: sudo systemctl restart carebeacon-hub")
    del key, text  # never kept, never printed
    return {**rec, "label_png": str(png), "sheet": str(sheet)}
