"""What a scenario sees of a home, whichever backend runs it (hil/scenarios/).

A `Session` is one home for one scenario: devices named by kind ("button", "pir",
"bracelet"), the hub, and the county platform. Backends:

    sim, clock="virtual"   hil/sim/rig.py VirtualSession: the firmware on the simulated air,
                           the hub's core in-process on the virtual clock (weeks in seconds)
    sim, clock="real"      hil/sim/rig.py LiveSession: the firmware on the simulated air in
                           real time, the REAL hub process (bleak -> BlueZ double), mosquitto
    real                   hil/real/rig.py RealSession: a board on USB serial and GPIO lines,
                           the real hub on the rig's adapter, mosquitto

Times are rig milliseconds (`now()`); inputs happen at now. Subclasses implement the
inputs and `_advance(ms)`; this base holds the platform-side queries and the waits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

ALARMS = ("manual_alarm", "automatic_alarm")


class Unsupported(Exception):
    """This backend cannot do this (e.g. a real rig with one button cannot show a PIR);
    the scenario is skipped with this reason, never faked."""


@dataclass
class Metrics:
    """What a scenario reports (hil/scenarios/conftest.py writes them into the run report)."""

    latencies_ms: list[float] = field(default_factory=list)  # press -> platform
    expected: int = 0  # alarms that must reach the platform
    delivered: int = 0  # of those, how many did (deduplicated on ref)
    duplicates: int = 0  # raw copies beyond the first, at the platform
    notes: list[str] = field(default_factory=list)
    clock: str = ""

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.delivered)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); nan for no values."""
    if not values:
        return math.nan
    v = sorted(values)
    k = max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))
    return v[k]


class Session:
    backend = ""
    clock = ""
    kinds: tuple[str, ...] = ()

    def __init__(self):
        self.metrics = Metrics()

    # -- time -----------------------------------------------------------------------------
    def now(self) -> int:
        raise NotImplementedError

    def _advance(self, ms: int) -> None:
        raise NotImplementedError

    def wall_ms(self, t: float) -> float:
        """Wall-clock ms (Unix) of rig time t, as the hub's clock sees it."""
        return time.time() * 1000 - (self.now() - t)

    def run(self, ms: int) -> None:
        self._advance(int(ms))

    def until(self, pred, timeout_ms: int, what: str, step_ms: int = 100):
        """Advance time until pred() is truthy; returns its value; AssertionError on timeout."""
        end = self.now() + timeout_ms
        while True:
            v = pred()
            if v:
                return v
            left = end - self.now()
            if left <= 0:
                raise AssertionError(f"after {timeout_ms / 1000:g} s ({self.backend}/"
                                     f"{self.clock}): still waiting for {what}")
            self._advance(min(step_ms, left))

    # -- the platform's view (subclasses provide _events(): ref -> (event, arrived_ms)) -------
    def _events(self) -> dict[str, tuple[dict, float]]:
        raise NotImplementedError

    def _arrived_since(self, since: float) -> list[tuple[str, dict, float]]:
        """Events that arrived at or after `since` (a backend may index this)."""
        return [(r, e, t) for r, (e, t) in self._events().items() if t >= since]

    @property
    def duplicates(self) -> int:
        raise NotImplementedError

    def availability(self, kind: str) -> bool | None:
        raise NotImplementedError

    def events(self, type_: str | tuple[str, ...] | None = None, kind: str | None = None,
               since: float = -math.inf, cause: str | None = None) -> list[tuple[str, dict, float]]:
        """(ref, event, arrived rig ms), oldest first, filtered."""
        types = (type_,) if isinstance(type_, str) else type_
        dev = self.device_hex(kind) if kind else None
        out = [(r, e, t) for r, e, t in self._arrived_since(since)
               if (types is None or e["type"] in types)
               and (dev is None or e.get("device", {}).get("id") == dev)
               and (cause is None or e.get("cause") == cause)]
        return sorted(out, key=lambda x: x[2])

    def wait_event(self, type_, kind: str | None = None, since: float = -math.inf,
                   timeout_ms: int = 10_000, cause: str | None = None, step_ms: int = 50):
        """The first matching event to arrive at or after `since`: (ref, event, arrived ms)."""
        got = self.until(lambda: self.events(type_, kind, since, cause), timeout_ms,
                         f"a {type_} event{' from the ' + kind if kind else ''}"
                         f"{' (' + cause + ')' if cause else ''} at the platform", step_ms)
        return got[0]

    # -- devices and the hub (subclasses) ------------------------------------------------------
    def device_hex(self, kind: str) -> str:
        raise NotImplementedError

    def need(self, *kinds: str) -> None:
        missing = [k for k in kinds if k not in self.kinds]
        if missing:
            raise Unsupported(f"this {self.backend} home has no {', '.join(missing)}")

    def press(self, kind: str = "button", hold_ms: int = 150) -> int:
        raise NotImplementedError

    def double_press(self, kind: str = "button") -> int:
        raise NotImplementedError

    def triple_press(self, kind: str = "button") -> int:
        raise NotImplementedError

    def hold(self, kind: str = "button", ms: int = 3500) -> int:
        raise NotImplementedError

    def motion(self, kind: str = "pir") -> int:
        raise NotImplementedError

    def fall(self, kind: str = "bracelet") -> int:
        raise NotImplementedError

    def power(self, kind: str, on: bool) -> None:
        raise NotImplementedError

    def power_cycle(self, kind: str, off_ms: int = 2000) -> None:
        self.power(kind, False)
        self.run(off_ms)
        self.power(kind, True)

    def asleep(self, kind: str) -> bool:
        """The device is in deep sleep (a press now pays the full wake path); real rigs: after
        its console went quiet."""
        raise NotImplementedError

    def patterns(self, kind: str, since: float = 0) -> list[str]:
        """What the elder saw and heard since `since` (firmware/feedback.py names)."""
        raise NotImplementedError

    def operator_ack(self, ref: str, operator: str = "op-rig") -> None:
        raise NotImplementedError

    def uplink(self, up: bool) -> None:
        raise NotImplementedError

    def kill_hub(self) -> None:
        raise NotImplementedError

    def start_hub(self) -> None:
        raise NotImplementedError

    def out_of_range(self, kind: str, gone: bool) -> None:
        """Carry the device out of the hub's range (or back)."""
        raise Unsupported(f"the {self.backend} backend cannot take a device out of range")

    def inactivity(self) -> str | None:
        """The hub's whole-home state: idle, prealarm, alarm, away (None: disabled)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- helpers ----------------------------------------------------------------------------
    def wait_asleep(self, kind: str, timeout_ms: int = 120_000) -> None:
        self.until(lambda: self.asleep(kind), timeout_ms, f"the {kind} to deep-sleep", 200)

    def alarm_after_press(self, kind: str = "button", timeout_ms: int = 10_000,
                          hold_ms: int = 150) -> tuple[str, float]:
        """Press (from deep sleep when the device sleeps), wait for the manual alarm;
        returns (ref, press -> platform ms) and records the latency."""
        t = self.press(kind, hold_ms)
        ref, _ev, arrived = self.wait_event("manual_alarm", kind, since=t, timeout_ms=timeout_ms,
                                            step_ms=20)
        lat = arrived - t
        self.metrics.latencies_ms.append(lat)
        return ref, lat
