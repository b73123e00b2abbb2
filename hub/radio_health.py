"""Radio health: what the pipeline forwards to the platform, separately from process liveness.

A live MQTT last will does not prove that adverts flow (ble-hub notes, failure mode 4), so
the radio reports its own state, on every change, and logs loudly while it is down (failure
mode 7: a scanner that fails silently loses days of alarms).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("carebeacon.radio")

STATES = ("starting", "scanning", "restarting", "resetting", "no_adapter", "error")
# What the platform sees (docs/mqtt.md "Hub state": radio.status)
STATUS = {
    "scanning": "ok",
    "starting": "degraded",
    "restarting": "degraded",
    "resetting": "degraded",
    "no_adapter": "down",
    "error": "down",
}
_LOG_LEVEL = {
    "starting": logging.INFO,
    "scanning": logging.INFO,
    "restarting": logging.WARNING,
    "resetting": logging.WARNING,
    "no_adapter": logging.ERROR,
    "error": logging.ERROR,
}
DETAIL_MAX = 200  # the platform's radio.detail limit (docs/mqtt/schemas/state.json)


@dataclass(frozen=True)
class RadioHealth:
    state: str  # one of STATES
    detail: str  # why, in words, at most DETAIL_MAX characters
    last_advert_age_s: float | None  # since the radio last heard any advert; None: never
    restarts: int  # scanner restarts (silence, scan lost under us, adapter back)
    resets: int  # adapter power cycles (silence, stuck discovery)
    adverts: int  # adverts the scanner reported, from any device, carebeacon or not
    since: float  # clock() when this state began

    @property
    def status(self) -> str:
        """The platform's radio.status: ok, degraded or down."""
        return STATUS[self.state]


class HealthTracker:
    """The radio's current health and counters; calls ``on_health`` when state or detail change."""

    def __init__(
        self,
        clock: Callable[[], float],
        on_health: Callable[[RadioHealth], None] | None,
        nag_s: float,
    ) -> None:
        self._clock = clock
        self._on_health = on_health
        self.nag_s = nag_s
        self.state, self.detail, self.since = "starting", "not started", clock()
        self.restarts = self.resets = self.adverts = 0
        self.heard_at: float | None = None  # last advert
        self._nagged = -math.inf

    def snapshot(self) -> RadioHealth:
        age = None if self.heard_at is None else max(0.0, self._clock() - self.heard_at)
        return RadioHealth(
            self.state, self.detail, age, self.restarts, self.resets, self.adverts, self.since
        )

    def set(self, state: str, detail: str) -> None:
        assert state in STATUS, state
        detail = detail[:DETAIL_MAX]
        now = self._clock()
        down = STATUS[state] == "down"
        if (state, detail) == (self.state, self.detail):
            if down and now - self._nagged >= self.nag_s:  # still down: say so again, now and then
                self._nagged = now
                log.error("radio still %s: %s", state, detail)
            return
        if state != self.state:
            self.since = now
        self.state, self.detail = state, detail
        if down:
            self._nagged = now
        log.log(_LOG_LEVEL[state], "radio %s: %s", state, detail)
        if self._on_health is not None:
            try:
                self._on_health(self.snapshot())
            except Exception:
                log.exception("on_health failed")
