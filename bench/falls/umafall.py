"""UMAFall (Casilari, Santoyo-Ramon, Cano-Garcia, Procedia CS 110, 2017): the WRIST tag.

Files: ``UMAFall_Subject_<nn>_<ADL|Fall>_<type>_<trial>_<date>_<time>.csv``. A ``%`` header
names each sensor's position (``%<MAC>; <id>; WRIST; SensorTag``), then ``;``-separated rows
``time stamp (ms); sample no; x; y; z; sensor type; sensor id`` with x, y, z in g; sensor
type 0 is the accelerometer. The SensorTags (MPU-9250) run at ~20 Hz with jittered stamps,
repeated samples and a few gaps, and clip at +-8 g per axis (the largest |a| in the data is
13.86 g = 8 g * sqrt 3): wrist peaks of hard falls and of clapping alike are cut there.
No per-sample labels: no fall onset, so no detection delay from the onset.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from pathlib import Path

from bench.falls import Skipped, Trial, iter_files
from bench.falls.resample import gaps_over, resample

BASE = "umafall"  # umafall-dev.tar.xz here; any umafall-<part> beside it is read too
POSITION = "WRIST"  # closest to the bracelet
ACCEL = 0  # "Sensor_Type: Accelerometer = 0"
GAP_MS = 200  # a hole of more than four ~50 ms periods counts as a gap
_NAME = re.compile(
    r"(?:^|/)UMAFall_Subject_(\d+)_(ADL|Fall)_(.+)_(\d+)_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.csv$"
)
_SENSOR = re.compile(r"^%\s*[0-9A-Fa-f:]+\s*;\s*(\d+)\s*;\s*([A-Za-z]+)\s*;")


def parse_name(path: str) -> tuple[str, str, str, int] | None:
    """(subject "Unn", "fall" or "adl", type, trial) from a file name, or None."""
    m = _NAME.search(path)
    if not m:
        return None
    kind = "fall" if m.group(2) == "Fall" else "adl"
    return "U%02d" % int(m.group(1)), kind, m.group(3), int(m.group(4))


def parse(text: str, position: str = POSITION) -> tuple[list[float], list[float], list[float],
                                                         list[float]]:
    """(time stamps ms, x, y, z milli-g) of the accelerometer at `position`, in time order."""
    sid = None
    tail = ""
    rows: list[tuple[float, int, float, float, float]] = []
    for line in text.splitlines():
        if line.startswith("%"):
            m = _SENSOR.match(line)
            if m and m.group(2).upper() == position.upper():
                sid = int(m.group(1))
                tail = ";%d;%d" % (ACCEL, sid)
            continue
        if sid is None or not line.rstrip().endswith(tail):  # cheap pre-filter
            continue
        f = line.split(";")
        if len(f) < 7 or not f[0].strip():
            continue
        try:
            if int(f[5]) != ACCEL or int(f[6]) != sid:
                continue
            rows.append((float(f[0]), int(f[1]), float(f[2]) * 1000, float(f[3]) * 1000,
                         float(f[4]) * 1000))
        except ValueError:
            raise ValueError(f"bad UMAFall row: {line!r}") from None
    if sid is None:
        raise ValueError(f"no {position} sensor in the header")
    if len(rows) < 2:
        raise ValueError(f"{len(rows)} {position} accelerometer rows: nothing to resample")
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[0] for r in rows], [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows]


def make_trial(name: str, text: str, rate_hz: int, position: str = POSITION) -> Trial:
    parsed = parse_name(name)
    if parsed is None:
        raise ValueError(f"not a UMAFall trial name: {name}")
    subject, kind, activity, rep = parsed
    t, xs, ys, zs = parse(text, position)
    return Trial("UMAFall", subject, kind, activity, rep, rate_hz,
                 resample(t, xs, ys, zs, rate_hz), None, Path(name).name, gaps_over(t, GAP_MS))


def load_source(source: Path, rate_hz: int,
                subjects: Collection[str] | None = None) -> Iterable[Trial | Skipped]:
    def want(path: str) -> bool:
        parsed = parse_name(path)
        return parsed is not None and (subjects is None or parsed[0] in subjects)

    for path, content in iter_files(source, want):
        try:
            yield make_trial(path, content.decode("utf-8", "replace"), rate_hz)
        except ValueError as e:  # one bad recording must not stop the evaluation
            yield Skipped(Path(path).name, str(e))
