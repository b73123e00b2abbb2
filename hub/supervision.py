"""Device supervision: is every device still reporting?

Each device declares its heartbeat interval (`heartbeat_min` in hub.toml, or
the platform's setting over it: hub/device_settings.py; sent to it in
acknowledgements). A device is *offline* once nothing valid was heard from it
for `misses` intervals plus a grace period (two missed heartbeats, as telecare
supervision counts "radio test transmission missing"), and *back* at its next
valid frame (a restoral). Where a device's real gaps turn out longer than
declared (a heartbeat setting not yet applied), the window follows the gaps it
has learned, so one misconfiguration does not flood the platform with
offline/online pairs.

Times are monotonic milliseconds (time.monotonic_ns() // 10**6): a wall-clock
step when NTP first syncs a Pi without RTC must not mark everything offline.
After a hub restart every device starts with a fresh window, except those reported
offline and not back: the store keeps them (`OFFLINE_STATE`, written with the missing and
restored events), so the restoral still comes and the same outage is not reported again.
"""

from __future__ import annotations

import json
import logging
from collections import deque

log = logging.getLogger("carebeacon.supervision")

OFFLINE_STATE = "supervision_offline"  # store state: JSON list of 8-hex-digit device ids

UNKNOWN, ONLINE, OFFLINE = "unknown", "online", "offline"


class _Track:
    __slots__ = ("interval_ms", "last_ms", "state", "gaps")

    def __init__(self, interval_ms: int, now_ms: int):
        self.interval_ms = interval_ms
        self.last_ms = now_ms  # a fresh window starts when supervision starts
        self.state = UNKNOWN
        self.gaps: deque[int] = deque(maxlen=32)


class Supervisor:
    def __init__(self, misses: int = 2, grace_ms: int = 10 * 60_000):
        self.misses = misses
        self.grace_ms = grace_ms
        self._t: dict[int, _Track] = {}

    def add(self, device_id: int, interval_ms: int, now_ms: int) -> None:
        self._t[device_id] = _Track(interval_ms, now_ms)

    def set_interval(self, device_id: int, interval_ms: int) -> None:
        """The device's heartbeat interval changed (a platform setting it has, or one longer
        than the old): its window follows at once. The gaps learned under the old interval
        say nothing about the new one: they are forgotten."""
        t = self._t.get(device_id)
        if t is not None and t.interval_ms != interval_ms:
            t.interval_ms = interval_ms
            t.gaps.clear()

    def remove(self, device_id: int) -> None:
        self._t.pop(device_id, None)

    def window_ms(self, device_id: int) -> int:
        t = self._t[device_id]
        declared = self.misses * t.interval_ms + self.grace_ms
        if len(t.gaps) >= 8:
            learned = sorted(t.gaps)[int(len(t.gaps) * 0.9)] * self.misses + self.grace_ms
            return max(declared, learned)
        return declared

    def seen(self, device_id: int, now_ms: int) -> str | None:
        """A valid frame arrived; returns ONLINE when the device's availability changed."""
        t = self._t.get(device_id)
        if t is None:
            return None
        if t.state != UNKNOWN:
            t.gaps.append(max(0, now_ms - t.last_ms))
        t.last_ms = now_ms
        if t.state != ONLINE:
            t.state = ONLINE
            return ONLINE
        return None

    def check(self, now_ms: int) -> list[tuple[int, str]]:
        """Devices whose window ran out since the last check: [(device_id, OFFLINE)]."""
        out = []
        for dev, t in self._t.items():
            if t.state != OFFLINE and now_ms - t.last_ms > self.window_ms(dev):
                t.state = OFFLINE
                out.append((dev, OFFLINE))
        return out

    def offline_blob(self) -> bytes:
        """The devices now offline, as stored under OFFLINE_STATE."""
        ids = sorted(d for d, t in self._t.items() if t.state == OFFLINE)
        return json.dumps([f"{d:08x}" for d in ids]).encode()

    def restore_offline(self, blob: bytes | None) -> set[int]:
        """At start: the stored devices (still configured) are offline again; returns them.
        A blob that cannot be read restores none (each then gets a fresh window)."""
        try:
            ids = {int(h, 16) for h in json.loads(blob)} if blob else set()
        except (ValueError, TypeError):
            log.error("stored %s is unusable: %r", OFFLINE_STATE, blob[:100] if blob else blob)
            return set()
        for d in ids & set(self._t):
            self._t[d].state = OFFLINE
        return ids & set(self._t)

    def state(self, device_id: int) -> str:
        t = self._t.get(device_id)
        return t.state if t else UNKNOWN

    def last_seen_ms(self, device_id: int) -> int | None:
        t = self._t.get(device_id)
        return t.last_ms if t else None
