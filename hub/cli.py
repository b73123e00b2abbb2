"""carebeacon-hub: run the hub, see its status, check its config, add and remove devices.

    python -m hub run            [-c /etc/carebeacon/hub.toml]
    python -m hub status         [--json]
    python -m hub check-config
    python -m hub device add 0000a1b2 --kind button --room bedroom --location "by the bed"
    python -m hub device add 0000a1b2 --kind button --key -      # the key from stdin
    python -m hub device remove 0000a1b2

Exit codes: 0 fine, 1 the hub or a check reports a problem, 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import io
import json
import logging
import os
import re
import secrets
import shlex
import sys
from pathlib import Path

from hub import config as C, config_edit as E, stored_settings

DEFAULT_CONFIG = os.environ.get("CAREBEACON_HUB_CONFIG", "/etc/carebeacon/hub.toml")
STALE_S = 15  # a status file older than this means the hub is not running


def _load(args) -> C.Config:
    return C.load(args.config, args.secrets)


def cmd_run(args) -> int:
    from hub.daemon import BLOCKED_UNTIL, Daemon

    # not strict: a TLS file or a connection hub.toml forbids is the uplink's problem (status,
    # log); the hub runs, stores and acknowledges alarms (a refusal restart-loops under systemd)
    cfg = C.load(args.config, args.secrets, strict=False)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = cfg.platform
    log = logging.getLogger("carebeacon.config")
    if p.blocked:
        log.error("%s; the hub runs, stores and acknowledges alarms, but %s", p.blocked,
                  BLOCKED_UNTIL)
    for problem in p.file_problems:
        log.error(
            "%s; the hub runs, stores and acknowledges alarms, and sends them once it is fixed",
            problem)
    if not p.tls and not p.blocked:  # mqtt:// (this machine only) or unix://: tests, simulator
        log.warning(
            "platform %s: NO TLS: alarms go unencrypted and unauthenticated to whatever broker "
            "answers there; a home needs mqtts:// (docs/install-hub.md)",
            f"unix:{p.unix_socket}" if p.unix_socket else f"mqtt://{p.host}:{p.port}")
    asyncio.run(Daemon(cfg).run())
    return 0


def cmd_check(args) -> int:
    cfg = _load(args)
    from hub.uplink_tls import check_platform_tls  # TLS files loaded as the uplink loads them
    check_platform_tls(cfg)
    problem = stored_settings.floor_problem(cfg)
    if problem:  # the hub starts anyway (an alarm hub must run) and logs the same
        raise C.ConfigError(problem)
    print(f"{cfg.path}: OK — hub {cfg.hub_id}, county {cfg.county}, household {cfg.household}, "
          f"{len(cfg.devices)} device(s), platform "
          f"{'unix:' + cfg.platform.unix_socket if cfg.platform.unix_socket else cfg.platform.host}"
          f"{'' if cfg.platform.unix_socket else ':' + str(cfg.platform.port)}"
          f" ({'mutual TLS' if cfg.platform.tls else 'NO TLS: tests only'})")
    return 0


def _age(iso: str | None) -> str:
    if not iso:
        return "never"
    t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    s = int((dt.datetime.now(dt.UTC) - t).total_seconds())
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def render(st: dict) -> str:
    """The status as a table a person can read at a glance."""
    up, radio = st["uplink"], st["radio"]
    lines = [
        f"hub {st['hub']}  county {st['county']}  household {st['household']}  "
        f"{'running' if st['running'] else 'STOPPED'} (status {_age(st['time'])})",
        f"platform: {'connected' if up['connected'] else 'NOT CONNECTED'}"
        f"{' (MQTT ' + str(up['protocol']) + ')' if up.get('protocol') else ''}   "
        f"radio: {radio['status']}{' — ' + radio['detail'] if radio.get('detail') else ''}",
        f"pending: {st['pending']['events']} event(s), "
        f"{len(st['pending']['alarms'])} alarm(s) not yet confirmed by the platform",
    ]
    if up.get("problem"):  # why not connected: TLS files, broker; or another hub's identity
        lines.append(f"platform problem: {up['problem']}")
    if st.get("inactivity"):
        i = st["inactivity"]
        lines.append(f"home: {i['state']}, still {i['still_min']} min "
                     f"(alarm at {i['threshold_min']} min, {i['learned_days']} days learned)")
        cov = i.get("coverage")
        lines.append("sensor coverage: " + (
            f"an emergency would go unseen {cov['unseen_mean_min']} min on average, longest "
            f"silence {cov['longest_unseen_min']} min ({cov['days']} days; the stillness alarm "
            "cannot be faster)" if cov else "not yet: needs 3 whole days measured"))
    for name, text in st.get("faults", {}).items():
        lines.append(f"FAULT {name}: {text}")
    lines.append("")
    head = ("device", "kind", "room", "state", "last seen", "battery", "rssi")
    rows = [head] + [
        (d["id"], d["kind"], d["room"] or "-", d["availability"], _age(d["last_seen"]),
         "-" if d["battery"] is None else f"{d['battery']} %",
         "-" if d["rssi"] is None else str(d["rssi"]))
        for d in st["devices"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    # the platform's values win over hub.toml's until it clears them (docs/mqtt.md, settings)
    tuned = [(f"device {d['id']}", d.get("platform_settings")) for d in st["devices"]]
    tuned.append(("inactivity", (st.get("inactivity") or {}).get("platform_settings")))
    for who, values in tuned:
        if values:
            lines.append(f"set by the platform for {who}: "
                         + ", ".join(f"{k} {v}" for k, v in values.items()))
    for u in st.get("unknown_devices", []):
        lines.append(f"unpaired device {u['id']} heard {u['count']}x at {u['address']} "
                     f"(rssi {u['rssi']}): add it with 'device add'")
    if st.get("unknown_dropped"):
        lines.append(f"{st['unknown_dropped']} more unpaired device ids heard earlier, not listed "
                     "(only the most recently heard are kept)")
    return "\n".join(lines)


def cmd_status(args) -> int:
    # as `hub run` loads it: a hub running with its uplink blocked (or TLS files it cannot use)
    # shows that in its status, which must be readable (status.json's uplink.problem)
    # without the keys: the hub's group may read hub.toml and the status, not the secrets file
    cfg = C.load(args.config, args.secrets, strict=False, with_keys=False)
    path = cfg.data_dir / "status.json"
    try:
        st = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"{path}: no status yet — is the hub running? (systemctl status carebeacon-hub)",
              file=sys.stderr)
        return 1
    except PermissionError:  # the unit's UMask: the hub's user and group only
        print(f"{path}: only the hub's user may read it: run this with sudo "
              "(or as a member of the hub's group)", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:  # empty or garbled after a power cut, unreadable
        print(f"{path}: cannot read the hub's status ({e}); the hub rewrites it every 2 s "
              "while it runs (systemctl status carebeacon-hub)", file=sys.stderr)
        return 1
    t = dt.datetime.fromisoformat(st["time"].replace("Z", "+00:00"))
    if (dt.datetime.now(dt.UTC) - t).total_seconds() > STALE_S:
        st["running"] = False
    if args.json:
        print(json.dumps(st, indent=1))
    else:
        print(render(st))
    healthy = (st["running"] and st["uplink"]["connected"] and not st["uplink"].get("problem")
               and st["radio"]["status"] == "ok")
    return 0 if healthy and not st.get("faults") else 1


# -- device add / remove: edit hub.toml and the secrets file (hub/config_edit.py) ------------
def add_device(cfg: C.Config, id_hex: str, kind: str, *, room: str = "", location: str = "",
               elder: str = "", heartbeat_min: int = 60, entrance: bool = False,
               key: str | None = None, secrets_file: str | Path | None = None,
               ) -> tuple[C.Device, str, Path]:
    """Add a device to hub.toml and its key to the secrets file (generated with a
    cryptographic random source unless given). Returns (device, key hex, secrets path);
    raises ConfigError on any problem, and then both files are as they were."""
    if not re.fullmatch(r"[0-9a-fA-F]{8}", id_hex) or int(id_hex, 16) == 0:
        raise C.ConfigError(f"device id {id_hex!r}: 8 hex digits, not 00000000")
    if kind not in C.KINDS:
        raise C.ConfigError(f"device kind {kind!r}: one of {', '.join(C.KINDS)}")
    room, location, elder = (E.command_line_text(f"--{k}", v) for k, v in
                             (("room", room), ("location", location), ("elder", elder)))
    for k, v in (("room", room), ("location", location)):
        why = C.device_text_problem(k, v)
        if why:
            raise C.ConfigError(f"--{k}: {why}")
    dev = C.Device(id=int(id_hex, 16), kind=kind, room=room, location=location,
                   elder=elder, heartbeat_min=heartbeat_min, entrance=entrance)
    if dev.id in cfg.devices:
        raise C.ConfigError(f"{cfg.path}: device {dev.hex} is already configured")
    key = key or secrets.token_hex(16)
    if not re.fullmatch(r"[0-9a-fA-F]{32}", key):
        raise C.ConfigError("--key must be 32 hex digits (128 bits)")
    with E.locked(cfg.path):  # another device add waits: its device is not dropped by ours
        sec = E.secrets_path(cfg.path, secrets_file)
        old_sec = E.read_text(sec) if os.path.exists(sec) else None
        old_cfg = E.read_text(cfg.path)
        sec_text = E.added_key_text(sec, old_sec, dev.hex, key.lower())
        cfg_text = E.added_device_text(cfg.path, old_cfg, dev)
        # the key first: a key without its device is harmless, a device without its key is not
        E.commit([(sec, sec_text, True, old_sec), (cfg.path, cfg_text, False, old_cfg)],
                 lambda: C.load(cfg.path, sec))  # a hub that cannot start is no hub
    return dev, key.lower(), sec


def secrets_path(cfg_path: Path, secrets_file: str | Path | None = None) -> Path:
    """The secrets file of a hub.toml: the one given, else its `secrets_file` (relative to
    hub.toml's directory), else secrets.toml next to it; as hub.config.load finds it."""
    return E.secrets_path(cfg_path, secrets_file)


def remove_device(cfg: C.Config, hexid: str, *, secrets_file: str | Path | None = None) -> bool:
    """Remove a device and its key; False if hub.toml has no such device. Raises ConfigError
    on any problem, and then both files are as they were."""
    hexid = hexid.lower()
    with E.locked(cfg.path):
        old_cfg = E.read_text(cfg.path)
        cfg_text = E.removed_device_text(cfg.path, old_cfg, hexid)
        if cfg_text is None:
            return False
        changes = [(cfg.path, cfg_text, False, old_cfg)]  # the device first, then its key
        sec = E.secrets_path(cfg.path, secrets_file)
        if os.path.exists(sec):
            old_sec = E.read_text(sec)
            changes.append((sec, E.removed_key_text(sec, old_sec, hexid), True, old_sec))
        E.commit(changes, lambda: C.load(cfg.path, sec))
    return True


def _read_key(arg: str | None) -> str | None:
    """--key: the key itself (scripts; visible in ps and shell history) or "-": from standard
    input, asked for without echo on a terminal."""
    if arg != "-":
        return arg
    if sys.stdin.isatty():
        key = getpass.getpass("device key (32 hex digits, not shown): ")
    else:
        key = sys.stdin.readline()
    if not key.strip():
        raise C.ConfigError("--key -: no key on standard input")
    return key.strip()


def cmd_device_add(args) -> int:
    cfg = _load(args)
    dev, _key, sec = add_device(
        cfg, args.id, args.kind, room=args.room, location=args.location, elder=args.elder,
        heartbeat_min=args.heartbeat_min, entrance=args.entrance, key=_read_key(args.key),
        secrets_file=args.secrets)
    print(f"added {dev.kind} {dev.hex} in {dev.room or 'no room'}; key stored in {sec}"
          f"{'' if args.key else ' (generated: provision the device with it)'}")
    print("restart the hub to pick it up: systemctl restart carebeacon-hub")
    return 0


def cmd_device_remove(args) -> int:
    cfg = _load(args)
    hexid = args.id.lower()
    if E.removed_device_text(cfg.path, E.read_text(cfg.path), hexid) is None:
        print(f"{cfg.path}: no device {hexid}", file=sys.stderr)
        return 1
    if not args.yes and sys.stdin.isatty():
        if input(f"remove device {hexid} and its key? [y/N] ").strip().lower() != "y":
            print("nothing changed")
            return 1
    if not remove_device(cfg, hexid, secrets_file=args.secrets):  # removed meanwhile
        print(f"{cfg.path}: no device {hexid} (any more)", file=sys.stderr)
        return 1
    print(f"removed {hexid}; restart the hub: systemctl restart carebeacon-hub (it then"
          " forgets the device's address and the platform's settings for it)")
    return 0


class _Parser(argparse.ArgumentParser):
    """No abbreviated options (argparse took `--ke` for `--key`, and _as_root echoed its
    value), and no usage error repeats a key (32 hex digits). Subparsers are of this class."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def error(self, message: str):
        super().error(re.sub(r"[0-9a-fA-F]{32,}", "<key, not shown>", message))


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="carebeacon-hub", description=__doc__.split("\n")[0])
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="hub.toml (default %(default)s)")
    p.add_argument("--secrets", help="secrets file (default: secrets_file in hub.toml)")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the hub (what the systemd unit starts)")
    r.add_argument("-v", "--verbose", action="store_true")
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("status", help="devices, pending alarms, uplink and radio")
    s.add_argument("--json", action="store_true", help="machine-readable")
    s.set_defaults(fn=cmd_status)
    sub.add_parser("check-config", help="check hub.toml and the secrets file").set_defaults(
        fn=cmd_check)
    d = sub.add_parser("device", help="add or remove a device").add_subparsers(
        dest="dcmd", required=True)
    a = d.add_parser("add", help="add a device (generates its key unless --key)")
    a.add_argument("id", help="8 hex digits")
    a.add_argument("--kind", required=True, choices=C.KINDS)
    a.add_argument("--room", default="")
    a.add_argument("--location", default="")
    a.add_argument("--elder", default="", help="the platform's reference of the elder")
    a.add_argument("--heartbeat-min", type=int, default=60)
    a.add_argument("--entrance", action="store_true", help="a PIR watching the front door")
    a.add_argument("--key", help="32 hex digits, or - to read it from standard input (asked"
                   " for without echo on a terminal; keeps it out of ps and shell history);"
                   " default: generate one")
    a.set_defaults(fn=cmd_device_add)
    rm = d.add_parser("remove", help="remove a device and its key")
    rm.add_argument("id")
    rm.add_argument("--yes", action="store_true", help="do not ask")
    rm.set_defaults(fn=cmd_device_remove)
    return p


def _as_root(args, argv: list[str]) -> str:
    """The same command with sudo (which drops CAREBEACON_HUB_CONFIG: -c given in full), the
    key, if it was on the command line, read from stdin."""
    out = [sys.executable, "-m", "hub"]
    if not any(a in ("-c", "--config") or a.startswith("--config=") for a in argv):
        out += ["-c", str(Path(args.config).absolute())]
    key = getattr(args, "key", None)
    for a in argv:  # the value argparse took as the key, however its option was spelled
        if key and key != "-" and (a == key or a.endswith("=" + key)):
            a = a[:len(a) - len(key)] + "-"
        out.append(a)
    return "sudo " + shlex.join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if isinstance(sys.stdout, io.TextIOWrapper):  # a room name never crashes an ASCII terminal
        sys.stdout.reconfigure(errors="backslashreplace")
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except C.ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        if isinstance(e, C.AccessError) and args.cmd == "device" and os.geteuid() != 0:
            print(f"run instead: {_as_root(args, argv)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
