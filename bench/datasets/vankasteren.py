"""van Kasteren house B (van Kasteren et al. 2010), as exported by a third party.

`houseB-ss.txt`: `start<TAB>end<TAB>sensor id` intervals (`21-Jul-2009 13:30:12`);
`sensorMapB-ids.txt`: `id,name,room`; `houseB-as.txt`: activity intervals, action 1 =
leave-house (`actionMapB.txt`). Mapping to carebeacon devices:
- `PIR ...` sensors (bedroom, bathroom, kitchen) -> a PIR in that room;
- `frontdoor` -> the door contact;
- every other sensor, and the ids the map does not name (20, 22-25 in this export) ->
  "other": unknown or not a carebeacon device, so never an input.
Labels cover only part of the sensor span (about 24 Jul - 7 Aug 2009); absences outside
it are unknown, so the evaluation puts emergencies only inside it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench.datasets.stream import Home, Pulse, local_seconds

FOLDER = "vankasteren-house-b"
LEAVE = "leave-house"


def _t(text: str) -> float:
    return local_seconds(dt.datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S"))


def _intervals(path: Path) -> list[tuple[float, float, str]]:
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            p = [x for x in line.rstrip("\n").split("\t") if x.strip()]
            if len(p) >= 3:
                a, b = _t(p[0]), _t(p[1])
                out.append((a, max(a, b), p[2].strip()))
    if not out:
        raise ValueError(f"{path}: no rows")
    return out


def _map(path: Path) -> dict[str, tuple[str, str]]:
    out = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            p = [x.strip() for x in line.split(",")]
            if len(p) >= 2 and p[0].isdigit():
                out[p[0]] = (p[1], p[2] if len(p) > 2 else "")
    return out


def load(folder: str | Path, house: str = "B") -> Home:
    folder = Path(folder)
    names = _map(folder / f"sensorMap{house}-ids.txt")
    actions = _map(folder / f"actionMap{house}.txt")
    pulses = []
    unknown: set[str] = set()
    for a, b, sid in _intervals(folder / f"house{house}-ss.txt"):
        name, room = names.get(sid, (f"id{sid}", "?"))
        if sid not in names:
            unknown.add(sid)
        low = name.lower()
        kind = "pir" if low.startswith("pir") else "door" if low == "frontdoor" else "other"
        if sid not in names:
            kind = "unknown"
        pulses.append(Pulse(a, b, f"{sid}:{name}", room, kind))
    labels = _intervals(folder / f"house{house}-as.txt")
    leave = {k for k, (v, _) in actions.items() if v == LEAVE}
    away = [(a, b) for a, b, k in labels if k in leave]
    span = (min(a for a, _, _ in labels), max(b for _, b, _ in labels))
    notes = [f"sensor ids not in the map, ignored: {sorted(unknown, key=int)}"] if unknown else []
    return Home(f"vankasteren-house-{house.lower()}", pulses, away, span, notes)
