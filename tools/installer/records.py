"""The installer's records of one visit: one JSON file per device, a summary and a table.

    ~/carebeacon-records/<household>/   (or --records DIR, $CAREBEACON_RECORDS)
        0a1b2c3d.json        everything done to that device: flash, deploy, provision,
                             self-test (never its key)
        summary.json         all devices of the visit, as the table shows them
        labels.html          the printable label sheet (tools/installer/label.py)
        labels/<id>.png      one label per device

Flash and deploy happen before a device has an id: their records wait in
`pending-<port>.json` until provision gives the device its id and claims them.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from hub import atomic_file
from tools.installer import errors as E, paths


def visit_dir(records: str | Path | None, household: str) -> Path:
    """The visit's folder (made if needed) under --records, $CAREBEACON_RECORDS or
    ~/carebeacon-records (tools/installer/paths.py: the invoking user's, also under sudo)."""
    d = visit_path(records, household)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise denied(d, e) from e
    return d


def visit_path(records: str | Path | None, household: str) -> Path:
    """visit_dir's folder, not made."""
    return paths.records_root(records) / re.sub(r"[^A-Za-z0-9._:-]", "_",
                                                household or "no-household")


def denied(path: Path, e: OSError) -> E.InstallerError:
    """The records cannot be read or written (made by `sudo ... install`, say)."""
    return E.InstallerError(
        "records", f"The visit's records at {path} cannot be used: {e.strerror or e}.",
        f"run the command with sudo as install was (sudo {sys.executable} -m tools.installer "
        "...), or name another folder with --records", str(e))


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _write(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"
    # fsync'ed: a visit writes a handful of records, and one left empty by a laptop that
    # crashed or ran flat right after would lose what was installed where (and the key's id).
    atomic_file.fsync_dir(atomic_file.write(path, text), ignore_errors=True)


def _pending_name(port: str) -> str:
    return "pending-" + re.sub(r"[^A-Za-z0-9]+", "_", port).strip("_") + ".json"


def save_pending(d: Path, port: str, section: str, data: dict) -> None:
    path = d / _pending_name(port)
    rec = json.loads(path.read_text()) if path.exists() else {}
    rec[section] = {**data, "time": now_iso()}
    _write(path, rec)


def claim_pending(d: Path, port: str) -> dict:
    path = d / _pending_name(port)
    if not path.exists():
        return {}
    rec = json.loads(path.read_text())
    path.unlink()
    return rec


def load(d: Path, device: str) -> dict:
    path = d / f"{device}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def update(d: Path, device: str, **sections) -> dict:
    rec = load(d, device)
    rec.setdefault("device", device)
    for k, v in sections.items():
        rec[k] = v
    _write(d / f"{device}.json", rec)
    write_summary(d)
    return rec


def devices(d: Path) -> list[dict]:
    """The visit's devices; not those removed from the hub when their board got a new id
    (their record stays, marked `removed`)."""
    recs = [json.loads(p.read_text()) for p in sorted(d.glob("[0-9a-f]" * 8 + ".json"))]
    return [r for r in recs if "removed" not in r]


def row(rec: dict) -> dict:
    prov, st = rec.get("provision", {}), rec.get("selftest", {})
    return {
        "device": rec["device"], "kind": prov.get("kind", "-"), "room": prov.get("room", ""),
        "board": prov.get("board", "-"),
        "firmware": rec.get("deploy", {}).get("micropython", "-"),
        "selftest": st.get("result", "not run"),
        "rssi": st.get("rssi"), "battery": st.get("battery"),
        "platform": st.get("platform", {}).get("state", "-") if st else "-",
        "device_ack": st.get("device_ack", "-") if st else "-",
    }


def summary(d: Path, **extra) -> dict:
    return {"visit": d.name, "time": now_iso(), "devices": [row(r) for r in devices(d)],
            **extra}


def write_summary(d: Path, **extra) -> dict:
    s = summary(d, **extra)
    _write(d / "summary.json", s)
    return s


def table(d: Path) -> str:
    rows = [row(r) for r in devices(d)]
    head = ("device", "kind", "room", "self-test", "signal", "battery", "platform", "device ack")
    lines = [head] + [(
        r["device"], r["kind"], r["room"] or "-", r["selftest"],
        "-" if r["rssi"] is None else f"{r['rssi']} dBm",
        "-" if r["battery"] is None else f"{r['battery']} %", r["platform"], r["device_ack"])
        for r in rows]
    widths = [max(len(str(x[i])) for x in lines) for i in range(len(head))]
    out = [f"visit {d.name}: {len(rows)} device(s)"]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(x, widths, strict=True)).rstrip()
            for x in lines]
    return "\n".join(out)
