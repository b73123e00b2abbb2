"""carebeacon-install: set up carebeacon devices in an elder's home.

A visit, one device after the other (plug each into the hub by USB), each command as
`sudo /opt/carebeacon/.venv/bin/python -m tools.installer ...` from /opt/carebeacon:

  install --kind button --room bedroom --location "by the bed"
      = flash MicroPython (asks first: erases the board), deploy the app, give the device
        its identity and key, register it with the hub, make its label
  sudo systemctl restart carebeacon-hub          (once, after the last device)
  selftest 0a1b2c3d                              (press / walk / shake as told)
  report                                         (the visit's table; JSON next to it)

Each step also runs alone: flash, deploy, provision, selftest, label, report, cache, ports.
Exit codes: 0 done, 1 failed (the message says what to do), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tools.installer import errors as E

KINDS = ("button", "pir", "bracelet")


def _confirm(args):
    def ask(question: str) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise E.InstallerError("needs-yes", f"{question} (not asked: no terminal)",
                                   "run it in a terminal, or add --yes to confirm")
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    return ask


def _bar(stream=sys.stderr):
    last = [0.0]

    def show(cur: int, total: int, label: str) -> None:
        if not stream.isatty():
            return
        now = time.monotonic()
        if cur < total and now - last[0] < 0.1:
            return
        last[0] = now
        frac = cur / total if total else 1.0
        fill = int(frac * 30)
        stream.write(f"\r  [{'#' * fill}{'.' * (30 - fill)}] {frac:4.0%} {label[:38]:<38}")
        if cur >= total:
            stream.write("\n")
        stream.flush()
    return show


def _visit_household(args) -> str:
    """The household records go under: given, else the hub's when its config is readable."""
    if args.household:
        return args.household
    try:
        return _household(args)
    except E.InstallerError:
        return "no-household"


def _say(args):
    return (lambda s: None) if args.quiet else print


def _hub(args):
    from hub.cli import DEFAULT_CONFIG

    return args.hub_config or DEFAULT_CONFIG


def cmd_ports(args) -> int:
    from serial.tools import list_ports

    from tools.installer.ports import KNOWN_VIDS

    found = list(list_ports.comports())
    for p in found:
        what = KNOWN_VIDS.get(p.vid or -1, "not a known board chip")
        print(f"{p.device:<16} {what:<22} {p.description or ''}")
    if not found:
        print("no serial ports: plug the board in with a data USB cable")
    return 0


def cmd_flash(args, on_chip=None) -> int:
    from tools.installer import records
    from tools.installer.flash import flash

    rec = flash(args.port, args.image, erase=not args.update, baud=args.baud,
                confirm=_confirm(args), progress=_bar(), say=_say(args), on_chip=on_chip)
    if args.verbose:
        print(rec["log"])
    rec.pop("log")
    visit = records.visit_dir(args.records, _visit_household(args))
    records.save_pending(visit, rec["port"], "flash", rec)
    args.flashed_port = rec["port"]
    return 0


def _board(args) -> str:
    from tools.installer.provision import DEFAULT_BOARD

    if args.board:
        return args.board
    if args.kind:
        return DEFAULT_BOARD[args.kind]
    raise E.InstallerError("no-board", "Which board is it?", "give --kind (button, pir, "
                           "bracelet: its usual board) or --board NAME (see boards/)")


def cmd_deploy(args) -> int:
    from tools.installer import records
    from tools.installer.deploy import deploy

    rec = deploy(args.port, _board(args), require=tuple(args.require), reset=args.reset,
                 progress=_bar(), say=_say(args))
    visit = records.visit_dir(args.records, _visit_household(args))
    records.save_pending(visit, rec["port"], "deploy", rec)
    return 0


def _household(args) -> str:
    from tools.installer.provision import load_hub

    return load_hub(_hub(args), args.secrets).household


def cmd_provision(args, identity=None) -> int:
    from tools.installer.provision import parse_settings, provision

    if not args.kind:
        raise E.InstallerError("no-kind", "What kind of device is it?",
                               "give --kind button, pir or bracelet")
    provision(args.port, args.kind, _hub(args), board=args.board, room=args.room,
              location=args.location, elder=args.elder, entrance=args.entrance,
              settings=parse_settings(args.set), device_id=args.id, identity=identity,
              secrets_file=args.secrets, records_dir=args.records, reset=not args.no_reset,
              confirm=_confirm(args), say=_say(args))
    return 0


def cmd_install(args) -> int:
    """tools/installer/install.py: every check first, the identity read before the erase."""
    from tools.installer import identity as ident, install, ports, records
    from tools.installer.deploy import safe_boot_hint

    cfg, board, want = install.precheck(args, _hub(args))  # before anything is touched
    args.household = args.household or cfg.household
    confirm, say = _confirm(args), _say(args)
    if not args.skip_flash:
        named = args.port
        args.port = ports.find_port(args.port)
        old = None if args.update else ident.read_before_erase(  # --update: no erase
            args.port, safe_boot_hint(board), say)
        if old is not None:
            want = ident.plan(cfg, old, want, confirm, say, erasing=True)
        visit = records.visit_dir(args.records, args.household)

        def on_chip(info: dict) -> None:  # the board did not answer: known by its MAC?
            nonlocal want
            found = None if old or args.update else ident.by_mac(visit, info["mac"], cfg)
            if found is not None and found != want.old:
                say(f"The visit's records know this board (MAC {info['mac']}) as {found}.")
                want = ident.plan(cfg, found, want, confirm, say, erasing=True)
        cmd_flash(args, on_chip=on_chip)
        args.port = install.wait_port(args.flashed_port, may_move=named is None)
        time.sleep(1.5)  # MicroPython's first boot formats its filesystem
    args.reset = False
    cmd_deploy(args)
    return cmd_provision(args, identity=want)


def cmd_selftest(args) -> int:
    from tools.installer import records
    from tools.installer.provision import load_hub
    from tools.installer.selftest import Env, HubView, selftest

    cfg = load_hub(_hub(args), args.secrets)
    dev = args.device.lower()
    known = cfg.devices.get(int(dev, 16)) if len(dev) == 8 else None
    if known is None:
        raise E.InstallerError("no-device", f"The hub's config has no device {args.device}.",
                               "check the id on the label, or provision the device first")
    visit = records.visit_dir(args.records, cfg.household)
    summary = args.summary_min or records.load(visit, dev).get("provision", {}).get(
        "settings", {}).get("summary_min", 15)

    def prompt(_step: str, text: str) -> None:
        print(f"\n==> {text}\n")

    def ask(question: str) -> bool | None:
        if args.no_ask or not sys.stdin.isatty():
            return None
        return input(f"{question} [y/n] ").strip().lower() in ("y", "yes")

    env = Env(HubView(cfg.data_dir), say=print, prompt=prompt, ask=ask)
    rep = selftest(env, dev, known.kind, summary_min=summary)
    records.update(visit, dev, selftest=rep)
    for c in rep["checks"]:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}")
        if c["todo"]:
            print(f"       What to do: {c['todo']}")
    print(f"\nSelf-test of {dev} ({known.kind}, {known.room or 'no room'}): "
          f"{rep['result'].upper()}")
    if args.json:
        print(json.dumps(rep, indent=1))
    return 0 if rep["result"] == "pass" else 1


def cmd_label(args) -> int:
    from tools.installer import label, records

    visit = records.visit_dir(args.records, args.household or _household(args))
    recs = records.devices(visit)
    for r in recs:
        if "provision" in r:
            label.png(int(r["device"], 16), r["provision"]["kind"],
                      visit / "labels" / f"{r['device']}.png")
    sheet = label.sheet(recs, visit / "labels.html", f"carebeacon labels - {visit.name}")
    print(f"{len(recs)} label(s); print {sheet} at 100 %")
    return 0


def cmd_report(args) -> int:
    from tools.installer import records
    from tools.installer.coverage import inactivity_coverage
    from tools.installer.provision import load_hub

    try:
        hub = load_hub(_hub(args), args.secrets)
    except E.InstallerError as e:
        if not args.household:
            raise
        hub = None  # records read away from the hub: the report still works
        why = e.what
    visit = records.visit_dir(args.records, args.household or hub.household)
    coverage = (inactivity_coverage(hub.devices.values(), hub.inactivity.enabled) if hub
                else [f"whole-home inactivity: not checked ({why})"])
    try:
        summary = records.summary(visit, inactivity_coverage=coverage)
        table = records.table(visit)
    except (OSError, ValueError) as e:
        raise records.denied(visit, e if isinstance(e, OSError) else OSError(str(e))) from e
    problem = None
    try:
        records.write_summary(visit, inactivity_coverage=coverage)
    except OSError as e:  # shown, but not kept: say so, and fail
        problem = records.denied(visit / "summary.json", e)
    print(json.dumps(summary, indent=1) if args.json else table)
    if not args.json:
        print("\n" + "\n".join(coverage))
        print(f"\n(records: {visit}" + ("" if problem else
                                          f"; JSON: {visit / 'summary.json'}") + ")")
    if problem:
        raise problem
    return 0


def cmd_cache(args) -> int:
    import shutil

    from tools.installer.flash import cache_dir, cached_images, image_chip

    root = cache_dir()
    if args.action == "add":
        for f in map(Path, args.files):
            if f.suffix == ".bin":
                chip = image_chip(f.read_bytes()[:64], f.name)
                dest = root / "firmware" / f.name
            else:
                chip, dest = "library", root / "lib" / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if f.is_dir() else shutil.copy2)(f, dest)
            print(f"added {f.name} ({chip}) to {dest.parent}")
        return 0
    for path, chip in cached_images(root):
        print(f"firmware  {chip:<9} {path.name}")
    libs = sorted((root / "lib").iterdir()) if (root / "lib").is_dir() else []
    for p in libs:
        print(f"library   {p.stem}")
    if not libs and not cached_images(root):
        print(f"the cache ({root}) is empty: add firmware with 'cache add FILE.bin'")
    return 0


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--records", metavar="DIR",
                        help="where the visit's records go (default ~/carebeacon-records; "
                             "under sudo, the home of the user who ran it)")
    common.add_argument("-y", "--yes", action="store_true",
                        help="do not ask before erasing or replacing anything")
    common.add_argument("-q", "--quiet", action="store_true", help="print less")
    common.add_argument("-v", "--verbose", action="store_true", help="print the tools' output")
    port = argparse.ArgumentParser(add_help=False)
    port.add_argument("-p", "--port", help="serial port (default: the one board plugged in)")
    hub = argparse.ArgumentParser(add_help=False)
    hub.add_argument("--hub-config", metavar="TOML",
                     help="the hub's hub.toml (default /etc/carebeacon/hub.toml)")
    hub.add_argument("--secrets", metavar="TOML", help="its secrets file (default: from hub.toml)")
    hh = argparse.ArgumentParser(add_help=False)
    hh.add_argument("--household", help="the visit's household (default: the hub's)")
    board = argparse.ArgumentParser(add_help=False)
    board.add_argument("--kind", choices=KINDS, help="what the device is")
    board.add_argument("--board", help="board file in boards/ (default: the kind's usual board)")
    flash = argparse.ArgumentParser(add_help=False)
    flash.add_argument("--image", metavar="BIN",
                       help="MicroPython firmware file (default: the newest in the cache for "
                            "the detected chip)")
    flash.add_argument("--update", action="store_true",
                       help="keep the board's files (a firmware update; default: erase all, "
                            "as a first install must)")
    flash.add_argument("--baud", type=int, default=460800, help="flash speed (default 460800; "
                       "use 115200 with long or poor cables)")
    dep = argparse.ArgumentParser(add_help=False)
    dep.add_argument("--require", action="append", default=[], metavar="MODULE",
                     help="a module the firmware must have; installed from the cache if not")
    prov = argparse.ArgumentParser(add_help=False)
    prov.add_argument("--room", default="", help="e.g. bedroom")
    prov.add_argument("--location", default="", help='e.g. "by the bed, left"')
    prov.add_argument("--elder", default="", help="the platform's reference of the elder")
    prov.add_argument("--entrance", action="store_true", default=None,
                      help="a PIR watching the front door")
    prov.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                      help="a device setting, e.g. summary_min=15 (docs/device-behaviour.md)")
    prov.add_argument("--id", type=lambda s: int(s, 16), help="device id, 8 hex digits "
                      "(default: a new random one); one on this hub the hub has never heard "
                      "(added with 'hub device add') is taken over")
    prov.add_argument("--no-reset", action="store_true", help="do not reset the board after")

    # allow_abbrev=False here and on each subparser (not inherited): an option is spelled in
    # full or refused, never taken for another one
    p = argparse.ArgumentParser(prog="python -m tools.installer", allow_abbrev=False,
                                description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name, fn, helptext, parents, **kw):
        s = sub.add_parser(name, help=helptext, description=helptext, parents=parents,
                           allow_abbrev=False, **kw)
        s.set_defaults(fn=fn)
        return s

    add("install", cmd_install, "flash + deploy + provision one device (the usual way)",
        [common, port, hub, hh, board, flash, dep, prov]).add_argument(
        "--skip-flash", action="store_true", help="the board already runs MicroPython")
    add("flash", cmd_flash, "write MicroPython onto a board (asks first: erases it)",
        [common, port, hub, hh, flash])
    d = add("deploy", cmd_deploy, "copy the app (compiled .mpy), the core and the board file; "
            "verify by hash", [common, port, hub, hh, board, dep])
    d.add_argument("--reset", action="store_true", help="reset the board afterwards")
    add("provision", cmd_provision, "give a deployed board its id and key, register it with "
        "the hub, make its label", [common, port, hub, board, prov])
    t = add("selftest", cmd_selftest, "test a device on site with the hub (run on the hub)",
            [common, hub])
    t.add_argument("device", help="the device id on its label (8 hex digits)")
    t.add_argument("--no-ask", action="store_true", help="do not ask what the device showed")
    t.add_argument("--summary-min", type=int, help="PIR: its activity report interval")
    t.add_argument("--json", action="store_true", help="also print the result as JSON")
    add("label", cmd_label, "make the labels again (PNG each, one sheet to print)",
        [common, hub, hh])
    r = add("report", cmd_report, "the visit's devices and self-tests as a table",
            [common, hub, hh])
    r.add_argument("--json", action="store_true", help="JSON instead of the table")
    c = add("cache", cmd_cache, "firmware images and libraries kept on this computer", [])
    c.add_argument("action", choices=("list", "add"), nargs="?", default="list")
    c.add_argument("files", nargs="*", help="with add: .bin firmware files, .py or package "
                   "folders (e.g. aioble)")
    add("ports", cmd_ports, "list serial ports and which look like boards", [])
    return p


def main(argv: list[str] | None = None) -> int:
    from tools.installer import paths

    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except E.InstallerError as e:
        print(f"\nPROBLEM: {e}", file=sys.stderr)
        if getattr(args, "verbose", False) and e.detail:
            print(f"\n(details: {e.detail})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 1
    finally:  # under sudo: what this made in the installer's home is theirs again
        paths.give_back([paths.cache_dir(), paths.records_root(getattr(args, "records", None))])
