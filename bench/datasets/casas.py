"""WSU CASAS sample home (`casas-al-smarthome/events.txt`).

Lines `date time area sensor value label`, e.g.
`2011-06-15 01:03:39.14962 Bedroom Bedroom ON Sleep`. Motion sensors report ON/OFF,
the front door OPEN/CLOSE, light switches ON/OFF (`...Light`).
Mapping to carebeacon devices:
- `OutsideDoor FrontDoor` OPEN/CLOSE -> the door contact ("door");
- `OutsideDoor Entry` (motion in the entry, passed on the way to most rooms: it fires
  about five times as often as the door opens) -> a PIR in the entry, NOT marked
  `entrance`: with a door contact there, its motion is a sign of life, not a door;
- `...Light` sensors -> "other" (light switches: no carebeacon device);
- every other ON/OFF sensor -> a PIR in its room.
Absences (evaluation only): from the last event of a run labelled Leave_Home to the first
later event labelled Enter_Home or from an indoor PIR, whichever comes first.
CASAS asks that its data not be redistributed: this reads it from ../shared/data only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench.datasets.stream import Home, local_seconds, pulses_from_edges

FOLDER = "casas-al-smarthome"


def _time(day: str, clock: str) -> float:
    return local_seconds(dt.datetime.fromisoformat(f"{day} {clock}"))


def _kind(area: str, sensor: str) -> str:
    if area == "OutsideDoor":
        return "door" if sensor == "FrontDoor" else "pir"
    if sensor.endswith("Light"):
        return "other"
    return "pir"


def load(folder: str | Path) -> Home:
    path = Path(folder) / "events.txt"
    edges: list[tuple[float, str, bool]] = []
    room: dict[str, str] = {}
    kind: dict[str, str] = {}
    rows: list[tuple[float, str, str]] = []  # (time, label, kind) for absences
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            p = line.split()
            if len(p) < 5:
                bad += bool(p)
                continue
            try:
                t = _time(p[0], p[1])
            except ValueError:
                bad += 1
                continue
            area, sensor, value = p[2], p[3], p[4].upper()
            name = f"{area}:{sensor}"
            kind[name] = _kind(area, sensor)
            room[name] = sensor if area == "LoungeChair" else area
            if value in ("ON", "OPEN"):
                edges.append((t, name, True))
            elif value in ("OFF", "CLOSE", "CLOSED"):
                edges.append((t, name, False))
            else:
                bad += 1
                continue
            rows.append((t, p[5] if len(p) > 5 else "", kind[name]))
    if not rows:
        raise ValueError(f"{path}: no events")
    pulses, odd = pulses_from_edges(edges, room, kind)
    notes = [f"{odd} unpaired ON/OFF edges dropped"] if odd else []
    if bad:
        notes.append(f"{bad} unreadable lines skipped")
    return Home("casas-al-smarthome", pulses, _absences(rows), (rows[0][0], rows[-1][0]),
                notes)


def _absences(rows: list[tuple[float, str, str]]) -> list[tuple[float, float]]:
    out = []
    left = None  # time of the last Leave_Home event of the current run
    for t, label, kind in rows:
        if label == "Leave_Home":
            left = t
        elif left is not None and (label == "Enter_Home" or kind == "pir"):
            out.append((left, t))
            left = None
    return out
