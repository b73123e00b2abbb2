"""Whether this home's sensors see the resident often enough for a fast stillness alarm.

No detector, however clever, can alarm in a silence that also happens on a normal day
without raising a false alarm that day: until the hub's next input from the home, an
emergency and an ordinary quiet spell look the same to it. So an emergency at a random
moment at home waits at least for the rest of the silence it falls in, and over the still
spells L the hub saw (between two inputs: motion, a door, a press) the mean of that wait is
sum(L^2) / (2 sum(L)): long spells weigh twice, as they are more likely to hold the
emergency and leave more of themselves to wait. It is `bench/inactivity_bound.py`'s
`bound-any`, measured live. A home whose PIRs miss the rooms where the resident sits and
sleeps (Ordonez A in docs/inactivity.md: 3 h 35 min) cannot have a fast stillness alarm,
and nobody would know from a quiet console; hub fault 210 `sensor_coverage` says so.

Spells that say nothing about the sensors are left out: those during which the detector
thought the resident away, a PIR or a bracelet was offline, the radio was down, the wall
clock had not been set by a time service, or the hub restarted. Figures are over whole days
(UTC days of the wall clock; a spell counts on the day it ended), the last `DAYS` of them
before today, decided once a day when a new day begins. A wall clock that comes back from
the future (a bad date, then NTP) drops the days it had invented.

A detector that asks the resident ("are you all right?") and gets an answer learns
something no sensor told it; this measure, like `bound-any`, is about listening only.
"""

from __future__ import annotations

import json
import math

SENSOR_COVERAGE = 210  # hub fault code (hub/contract_events.py HUB_FAULTS)
DAYS = 7  # a week: every weekday's routine once
MIN_DAYS = 3  # as the detector's min_days: fewer whole days say little
RAISE_MIN = 180  # carebeacon's goal, a mean detection within 3 h (docs/inactivity.md)
CLEAR_MIN = 150  # 30 min below: a home near the line does not raise and clear every day
_DAY_MS = 86_400_000
_MIN_MS = 60_000


class Coverage:
    def __init__(self) -> None:
        # UTC day -> [sum of L^2 (min^2), sum of L (min), longest L (min)]
        self._days: dict[int, list[float]] = {}
        self._last: int | None = None  # mono ms of the last input this run
        self._tainted = False
        # fault 210 in force (kept across restarts); None: unknown (the stored flag could
        # not be read), so the next verdict either way is sent: a fault already on the
        # platform still gets its restoral, one never sent is still raised
        self.raised: bool | None = False

    # -- inputs ---------------------------------------------------------------------------
    def input(self, mono_ms: int, wall_ms: int) -> bool:
        """An input reached the detector. True when a new day began: time to decide."""
        new_day = False
        if self._last is not None and not self._tainted:
            new_day = self._add(wall_ms // _DAY_MS, (mono_ms - self._last) / _MIN_MS)
        self._last, self._tainted = mono_ms, False
        return new_day

    def unreliable(self) -> None:
        """The spell going on says nothing about the sensors (away, a device offline...)."""
        self._tainted = True

    def _add(self, day: int, still_min: float) -> bool:
        for future in [d for d in self._days if d > day]:
            del self._days[future]  # the wall clock went back: those days never were
        newest = max(self._days, default=None)
        b = self._days.setdefault(day, [0.0, 0.0, 0.0])
        b[0] += still_min * still_min
        b[1] += still_min
        b[2] = max(b[2], still_min)
        for old in sorted(self._days)[:-DAYS - 1]:
            del self._days[old]  # the newest DAYS + 1 days kept (figure() takes the window)
        return newest is not None and day > newest

    # -- figures --------------------------------------------------------------------------
    def figure(self, today: int | None = None) -> dict | None:
        """Over the whole days before `today` (UTC day number; default: the newest day with a
        spell), at most DAYS back: {days, unseen_mean_min, longest_unseen_min}, or None
        before MIN_DAYS of them (also when nothing was measured for a while)."""
        if today is None:
            today = max(self._days, default=0)
        whole = [b for d, b in self._days.items() if today - DAYS <= d < today]
        if len(whole) < MIN_DAYS:
            return None
        sq, total = sum(b[0] for b in whole), sum(b[1] for b in whole)
        return {"days": len(whole),
                "unseen_mean_min": round(sq / (2 * total)) if total else 0,
                "longest_unseen_min": round(max(b[2] for b in whole))}

    def decide(self) -> int:
        """+1: raise fault 210, -1: clear it, 0: nothing changes (hysteresis)."""
        fig = self.figure()
        if fig is None:
            return 0
        if self.raised is not True and fig["unseen_mean_min"] > RAISE_MIN:
            self.raised = True
            return 1
        if self.raised is not False and fig["unseen_mean_min"] <= CLEAR_MIN:
            self.raised = False
            return -1
        return 0

    # -- stored ---------------------------------------------------------------------------
    def to_json(self) -> bytes:
        days = {str(d): [round(x, 3) for x in b] for d, b in sorted(self._days.items())}
        return json.dumps({"v": 1, "raised": self.raised, "days": days},
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, blob: bytes) -> Coverage:
        """ValueError if unusable. The spell going on at a restart is not continued."""
        doc = json.loads(blob)
        if not isinstance(doc, dict) or doc.get("v") != 1 or (
                doc.get("raised") is not None and type(doc.get("raised")) is not bool):
            raise ValueError("coverage: unknown layout")
        cov = cls()
        cov.raised = doc["raised"]
        days = doc.get("days")
        if not isinstance(days, dict):
            raise ValueError("coverage: no days")
        for d, b in days.items():
            if (not isinstance(b, list) or len(b) != 3 or not all(
                    type(x) in (int, float) and math.isfinite(x) and x >= 0 for x in b)):
                raise ValueError(f"coverage: day {d} is not three figures")
            cov._days[int(d)] = [float(x) for x in b]
        return cov


def day_of(wall_ms: int) -> int:
    return wall_ms // _DAY_MS


UNKNOWN_TEXT = ("whether this home's sensors leave the resident unseen too long is unknown "
                "(its stored state was unreadable): measuring afresh")


def fault_text(fig: dict | None) -> str:
    """Fault 210's text: what the operator should have fixed (at most 200 characters)."""
    if fig is None:
        return "raised before a restart: this home's sensors leave the resident unseen too long"
    return (f"an emergency would go unseen {fig['unseen_mean_min']} min on average (longest "
            f"silence {fig['longest_unseen_min']} min, {fig['days']} days): add PIRs where the "
            "resident sits and sleeps, and one seeing the way out")[:200]
