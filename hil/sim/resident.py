"""The resident of the simulated home: a day's routine, room by room, and what the sensors see.

    r = Resident(home, pirs={"living room": "pir", "kitchen": "pir2"}, bracelet=None)
    r.live_until(7 * DAY)        # a week, hour by hour (inputs are scheduled an hour ahead)

A day (local time; world time 0 is 07:00 on a Monday, hil/sim/rig.py): asleep in the
bedroom until about 07:00, bathroom, breakfast in the kitchen, the living room, lunch,
an outing on some days (out of the house: nothing sees her), dinner, bed at about 22:30;
each time varies by up to `jitter_min`. Awake in a room with a PIR, she moves in front of
it every 1-6 minutes (a ~2 s pulse, AM312-like); asleep, nothing. The bracelet, if worn,
follows her from room to room (distance and walls to the hub), is "active" while she is up
and "rest" in bed, and goes out with her. Batteries run down at `drain_mv_per_day`.
"""

from __future__ import annotations

import random

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
DAY0_MIN = 7 * 60  # local time of day at world time 0


class Resident:
    def __init__(self, home, *, pirs: dict[str, str], bracelet: str | None = None,
                 seed: int = 3, jitter_min: int = 20, outing_days: tuple[int, ...] = (1, 3, 5),
                 drain_mv_per_day: dict[str, float] | None = None):
        self.home = home
        self.pirs = pirs
        self.bracelet = bracelet
        self.rng = random.Random(seed)
        self.jitter = jitter_min
        self.outing_days = outing_days
        self.drain = drain_mv_per_day or {}
        self.scheduled_to = 0  # inputs exist up to this world time
        self._plans: dict[int, list[tuple[int, str]]] = {}
        self.room = "bedroom"
        self._mv: dict[str, float] = {}

    # -- the day's plan -------------------------------------------------------------------------
    def _j(self) -> int:
        return self.rng.randint(-self.jitter, self.jitter)

    def plan(self, day: int) -> list[tuple[int, str]]:
        """[(world ms, room)], sorted: where she goes on `day` (0 = the first)."""
        if day in self._plans:
            return self._plans[day]
        base = day * DAY - DAY0_MIN * MIN  # world time of that day's local midnight
        steps = [(0, "bed"), (7 * 60 + self._j(), "bathroom"), (7 * 60 + 25 + self._j() // 2,
                 "kitchen"), (8 * 60 + 10 + self._j(), "living room")]
        if day % 7 in self.outing_days:
            out = 10 * 60 + self._j()
            steps += [(out, "outside"), (out + 90 + self._j(), "hall"),
                      (out + 95 + self._j() // 4, "living room")]
        steps += [(12 * 60 + 15 + self._j(), "kitchen"), (13 * 60 + self._j(), "living room"),
                  (15 * 60 + self._j(), "garden"), (15 * 60 + 45 + self._j(), "living room"),
                  (18 * 60 + 30 + self._j(), "kitchen"), (19 * 60 + 15 + self._j(), "living room"),
                  (22 * 60 + 20 + self._j(), "bathroom"), (22 * 60 + 35 + self._j(), "bed")]
        steps.sort()
        plan = [(base + m * MIN, room) for m, room in steps]
        self._plans[day] = plan
        return plan

    def where(self, t: int) -> str:
        day = (t + DAY0_MIN * MIN) // DAY
        room = "bed"
        for t0, r in self.plan(day - 1)[-1:] + self.plan(day):
            if t0 <= t:
                room = r
        return room

    # -- scheduling inputs ------------------------------------------------------------------------
    def schedule(self, t0: int, t1: int) -> None:
        """Inputs for [t0, t1): PIR pulses, bracelet room and wear changes."""
        t = t0
        last_room = None
        while t < t1:
            room = self.where(t)
            if room != last_room:
                self._enter(room, t)
                last_room = room
            here = "bedroom" if room == "bed" else room
            pir = self.pirs.get(here)
            if pir is not None and room != "bed":
                self.home.motion(pir, 2000, at=t)
            t += self.rng.randint(1, 6) * MIN + self.rng.randint(0, 59_000)
        self.scheduled_to = t1

    def _enter(self, room: str, t: int) -> None:
        self.room = room
        b = self.bracelet
        if b is None:
            return
        self.home.wear(b, "rest" if room == "bed" else "active", at=t)
        # The bracelet's place is set when the world reaches t (see live_until).

    def live_until(self, t_end: int, on_hour=None) -> None:
        """Run the home to t_end, an hour at a time (inputs an hour ahead, history compacted)."""
        home = self.home
        while home.now < t_end:
            nxt = min(t_end, (home.now // HOUR + 1) * HOUR)
            if self.scheduled_to < nxt:
                self.schedule(max(self.scheduled_to, home.now + 1), nxt)
            self._step_to(nxt)
            home.compact()
            for name, mv in self.drain.items():
                p = home.devs[name].plat
                left = self._mv.get(name, float(p.battery_mv)) - mv / 24
                self._mv[name] = left
                p.battery_mv = max(1600, int(left))
            if on_hour is not None:
                on_hour(home.now)

    def _step_to(self, t_end: int) -> None:
        """Advance, moving the bracelet with her at each change of room."""
        home = self.home
        if self.bracelet is None:
            home.world.run_until(t_end)
            return
        while home.now < t_end:
            room = self.where(home.now)
            home.move(self.bracelet, "bedroom" if room == "bed" else room)
            nxt = t_end
            for day in ((home.now + DAY0_MIN * MIN) // DAY, (home.now + DAY0_MIN * MIN) // DAY + 1):
                for t0, _r in self.plan(day):
                    if home.now < t0 < nxt:
                        nxt = t0
            home.world.run_until(nxt)
