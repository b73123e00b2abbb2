"""The common shape of a home's data, and the stream the hub would see of it.

A loader (casas.py, ordonez.py, vankasteren.py) turns a data set into a `Home`:
- `pulses`: each sensor activation as an interval (start, end), in *local* seconds
  (naive local time read as if it were UTC, so `t % 86400` is the local time of day),
  with the sensor's name, room and kind:
    "pir"      a motion sensor in a room (a carebeacon PIR device there),
    "entrance" a motion sensor at the front door (a PIR marked `entrance` in hub.toml),
    "door"     the front-door contact (DOOR frames: opened at the start, closed at the end),
    "other"    anything carebeacon has no device for (pressure mats, reed switches on
               cupboards, flush, appliances, lights),
    "unknown"  sensors the data set does not name (never used);
- `absences`: labelled times the resident was out — ground truth for evaluation only,
  never an input of any detector;
- `labelled`: the span the activity labels cover (outside it absences are unknown).

`hub_frames()` then turns the pulses into the radio frames the hub receives, with the
time it receives them, exactly as the PIR firmware (firmware/apps/pir.py on shared/pir.py)
would send them: each PIR runs the real shared.pir conditioning (lock-out, stuck, silent)
and sends an ACTIVITY summary at the end of every 5-min interval (intervals run from the
device's own start, a phase of its own) plus an immediate MOTION for the first motion
after >= 30 min without. The hub (hub/home.py) counts an ACTIVITY only when its motion
count is > 0, so summaries with no motion are dropped here. Door contacts send DOOR at
once. Radio delay (seconds) is ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared import inactivity as I
from shared.pir import EV_AFTER_STILL, EV_SUMMARY, Pir

DAY_S = 86_400
KINDS = ("pir", "entrance", "door", "other", "unknown")
_EPOCH = dt.datetime(1970, 1, 1)
_TICKS = 0x3FFFFFFF


def local_seconds(t: dt.datetime) -> float:
    """Naive local time -> seconds since 1970-01-01 local (time of day = value % 86400)."""
    return (t - _EPOCH).total_seconds()


def fmt(t: float) -> str:
    return (_EPOCH + dt.timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Pulse:
    start: float  # local seconds
    end: float  # >= start
    sensor: str
    room: str
    kind: str  # one of KINDS


@dataclass
class Home:
    name: str
    pulses: list[Pulse]
    absences: list[tuple[float, float]]  # labelled out of the home (evaluation only)
    labelled: tuple[float, float]  # span covered by activity labels
    notes: list[str] = field(default_factory=list)  # what the loader dropped or assumed

    def __post_init__(self) -> None:
        self.pulses.sort(key=lambda p: (p.start, p.end, p.sensor))
        self.absences = merge(self.absences)

    @property
    def start(self) -> float:
        return min(p.start for p in self.pulses)

    @property
    def end(self) -> float:
        return max(p.end for p in self.pulses)

    def sensors(self, kind: str) -> list[str]:
        return sorted({p.sensor for p in self.pulses if p.kind == kind})

    def away_at(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.absences)

    def only(self, sensors: Iterable[str], name: str) -> Home:
        """The same home with only some sensors (e.g. one PIR): a sparser installation."""
        keep = set(sensors)
        return Home(name, [p for p in self.pulses if p.sensor in keep], list(self.absences),
                    self.labelled, [*self.notes, f"only sensors {sorted(keep)}"])


def merge(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if b < a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def pulses_from_edges(edges: Iterable[tuple[float, str, bool]], room: dict[str, str],
                      kind: dict[str, str]) -> tuple[list[Pulse], int]:
    """(time, sensor, on) edges -> pulses; an ON without OFF, or OFF without ON, is
    dropped (counted in the second value)."""
    open_at: dict[str, float] = {}
    out = []
    odd = 0
    for t, s, on in sorted(edges):
        if on:
            if s in open_at:
                odd += 1  # ON after ON: the first lasts until this one
                out.append(Pulse(open_at[s], t, s, room[s], kind[s]))
            open_at[s] = t
        elif s in open_at:
            out.append(Pulse(open_at.pop(s), t, s, room[s], kind[s]))
        else:
            odd += 1
    odd += len(open_at)
    return out, odd


# -- the hub's view ------------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    t: float  # local seconds the hub receives it
    source: int  # shared.inactivity SRC_*
    sensor: str
    what: str  # "activity", "motion", "door"


def hub_frames(home: Home, *, summary_min: int = 5, still_min: int = 30,
               proxies: bool = False) -> list[Frame]:
    """Frames the hub receives, in time order (see the module docstring).

    `proxies=True` also treats the "other" sensors as if a PIR in their room had seen
    the person (what-if: a home fitted with a PIR in every room the data set covers)."""
    by_sensor: dict[str, list[Pulse]] = {}
    for p in home.pulses:
        if p.kind in ("pir", "entrance") or (proxies and p.kind == "other"):
            by_sensor.setdefault(p.sensor, []).append(p)
    frames: list[Frame] = []
    t0 = home.start
    for i, (s, ps) in enumerate(sorted(by_sensor.items())):
        src = I.SRC_DOOR if ps[0].kind == "entrance" else I.SRC_MOTION
        phase = (i * 97.0) % (summary_min * 60)  # devices start at different moments
        frames += _pir_frames(ps, t0 - 120 - phase, summary_min, still_min, src, s)
    for p in home.pulses:
        if p.kind == "door":
            frames.append(Frame(p.start, I.SRC_DOOR, p.sensor, "door"))
            frames.append(Frame(p.end, I.SRC_DOOR, p.sensor, "door"))
    frames.sort(key=lambda f: (f.t, f.sensor, f.what))
    return frames


def _pir_frames(pulses: list[Pulse], start: float, summary_min: int, still_min: int,
                src: int, sensor: str) -> list[Frame]:
    """Run shared.pir on one sensor's level changes and polls at each interval end."""
    pir = Pir(warmup_ms=60_000, interval_ms=summary_min * 60_000, still_ms=still_min * 60_000)
    ms = _Clock(start)
    pir.start(ms(start))
    edges: list[tuple[float, bool]] = []
    for a, b in merge((p.start, max(p.end, p.start + 1.0)) for p in pulses):  # >= 1 s high
        edges.append((a, True))
        edges.append((b, False))
    step = summary_min * 60.0
    next_end = start + 60.0 + step
    out: list[Frame] = []
    level = False
    for t, on in [*edges, (edges[-1][0] + step * 2, False)]:
        while next_end <= t:
            _emit(pir.poll(ms(next_end)), pir, next_end, src, sensor, out)
            next_end += step
        if on != level:
            level = on
            _emit(pir.update(ms(t), on), pir, t, src, sensor, out)
    return out


def _emit(ev: int, pir: Pir, t: float, src: int, sensor: str, out: list[Frame]) -> None:
    if ev & EV_AFTER_STILL:
        out.append(Frame(t, src, sensor, "motion"))
    if ev & EV_SUMMARY and (pir.summary_count > 0 or pir.summary_live):  # as firmware/apps/pir.py
        out.append(Frame(t, src, sensor, "activity"))


class _Clock:
    """Local seconds -> device ticks (ms since `origin`, wrapped like an ESP32)."""

    def __init__(self, origin: float):
        self.origin = origin

    def __call__(self, t: float) -> int:
        return int(round((t - self.origin) * 1000)) & _TICKS
