"""UCI "ADLs recognition using binary sensors", home A (Ordonez et al., Sensors 2013).

`OrdonezA_Sensors.txt`: `start end location type place` (two header lines), each row an
interval a sensor was active. Mapping to carebeacon devices:
- type PIR (Shower, Basin, Cooktop) -> a PIR in its place (room);
- Maindoor (Magnetic, Entrance) -> the door contact;
- everything else (pressure mats on bed and seat, reed switches on cupboards, flush,
  appliances) -> "other": carebeacon has no such device.
`OrdonezA_ADLs.txt`: `start end activity`; Leaving intervals are the absences
(evaluation only).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench.datasets.stream import Home, Pulse, local_seconds

FOLDER = "ordonez-home-a"


def _rows(path: Path, width: int) -> list[list[str]]:
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            p = line.split()
            if len(p) >= width and p[0][:1].isdigit():
                out.append(p)
    if not out:
        raise ValueError(f"{path}: no rows")
    return out


def _t(day: str, clock: str) -> float:
    return local_seconds(dt.datetime.fromisoformat(f"{day} {clock}"))


def _kind(location: str, typ: str) -> str:
    if location.lower() == "maindoor":
        return "door"
    return "pir" if typ.upper() == "PIR" else "other"


def load(folder: str | Path, prefix: str = "OrdonezA") -> Home:
    folder = Path(folder)
    pulses = []
    for p in _rows(folder / f"{prefix}_Sensors.txt", 7):
        a, b = _t(p[0], p[1]), _t(p[2], p[3])
        pulses.append(Pulse(a, max(a, b), p[4], p[6], _kind(p[4], p[5])))
    labels = [(_t(p[0], p[1]), _t(p[2], p[3]), p[4])
              for p in _rows(folder / f"{prefix}_ADLs.txt", 5)]
    away = [(a, b) for a, b, act in labels if act.lower() == "leaving"]
    span = (min(a for a, _, _ in labels), max(b for _, b, _ in labels))
    name = f"ordonez-home-{prefix[-1].lower()}"
    return Home(name, pulses, away, span)
