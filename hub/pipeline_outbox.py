"""The hub core's outbox: stored events offered to the platform until its broker confirms them.

`Outbox` is the part of `hub.pipeline.HubCore` that applies rules 4 and 5 of hub/pipeline.py:
it offers pending events to the publisher (`hub.uplink.Uplink` or a test double), follows them
in flight until `on_delivered` or `on_rejected`, and publishes a delivered alarm again (same
ref) until an operator acknowledges it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub import contract
from hub.store_types import HUB_SELF
from shared import frame as F

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Callable

    from hub.config import Config
    from hub.pipeline import Clock
    from hub.store import Store

ALARM_TYPES = ("manual_alarm", "automatic_alarm")
# Refill the uplink only when fewer events than this are in flight: pump() reads the pending
# queue (O(pending)), so pumping after every PUBACK made draining a long outage's backlog
# quadratic (2000 alarms: a minute of CPU with the event loop blocked, radio unheard).
# pump() reads the store only while a backlog may exist; otherwise a new event is published
# straight after its commit (`_offer`): that query was ~0.1 ms of every alarm's latency.
PUMP_LOW_WATER = 20
# ...and never have more than this in flight: each pump() skips every in-flight event, so a
# burst of frames (each pumping) while PUBACKs wait their turn on the loop was quadratic too.
# paho sends only max_inflight (20) at a time anyway. It also bounds the PUBACK callbacks (one
# FULL commit each) queued in one loop iteration, and so how long an ack write or a new
# frame waits during a drain (2000 alarms: a new SOS STORED in ~2.5 s instead of ~5 s at 150).
PUMP_MAX_IN_FLIGHT = 40


class Outbox:
    """Publishing stored events; a base of `hub.pipeline.HubCore`, which sets the attributes
    below (`_init_outbox` sets the outbox's own) and provides `hub_fault`,
    `hub_fault_cleared` and `_ack_if_near`."""

    cfg: Config
    store: Store
    clock: Clock
    publisher: Any
    counters: Counter[str]
    faults: dict[int, str]

    def _init_outbox(
        self, alarm_repeat_s: int, alarm_repeat_for_s: int, defer: Callable | None
    ) -> None:
        self.defer = defer
        self._commit_queued = False
        self.alarm_repeat_ms = alarm_repeat_s * 1000
        self.alarm_repeat_for_ms = alarm_repeat_for_s * 1000
        self.in_flight: dict[str, int] = {}  # ref -> mono ms published
        # False only when every pending event in the store is in flight: set False by a
        # pump() that saw the whole queue, True by anything that may leave one behind.
        self.backlog = True
        self.event_topic = contract.event_topic(self.cfg.county, self.cfg.hub_id)
        self.rejected: dict[str, int] = {}  # ref -> mono ms it may be offered again
        self.repeat_at: dict[str, int] = {}  # delivered alarm ref -> mono ms to publish again
        self.repeat_until: dict[str, int] = {}

    def _resume_repeats(self, now: int) -> None:
        # a restarted hub resumes repeating the alarms no operator has acknowledged yet
        wall = self.clock.wall_ms()
        for ev in self.store.awaiting_help(wall - self.alarm_repeat_for_ms):
            if self._is_alarm(ev.payload_json):
                self.repeat_at[ev.ref] = now + self.alarm_repeat_ms
                self.repeat_until[ev.ref] = (
                    now + self.alarm_repeat_for_ms - (wall - (ev.delivered_ms or wall))
                )

    def _offer(self, ref: str, payload: str) -> None:
        """Publish an event just stored. With no backlog it is the only event not in flight,
        so it is what pump() would pick: send it without reading the queue back."""
        if (
            self.backlog
            or len(self.in_flight) >= PUMP_MAX_IN_FLIGHT
            or not getattr(self.publisher, "connected", False)
        ):
            self.backlog = True
            self.pump()
        elif self.publisher.publish_event(ref, self.event_topic, payload.encode()):
            self.in_flight[ref] = self.clock.mono_ms()
        else:
            self.backlog = True

    def pump(self) -> None:
        """Offer pending events to the platform, oldest first, alarms ahead of routine."""
        room = PUMP_MAX_IN_FLIGHT - len(self.in_flight)
        if not self.backlog or room <= 0 or not getattr(self.publisher, "connected", False):
            return
        now = self.clock.mono_ms()
        exclude = set(self.in_flight) | {r for r, t in self.rejected.items() if t > now}
        limit = min(100, room)
        pending = self.store.pending(limit=limit, exclude=exclude)
        for ev in pending:
            if not ev.payload_json:
                continue
            if not self.publisher.publish_event(ev.ref, self.event_topic, ev.payload_json.encode()):
                return
            self.in_flight[ev.ref] = now
            self.rejected.pop(ev.ref, None)
        # Saw the whole queue and sent it all; a refused event waits, so keep looking then.
        if len(pending) < limit and not self.rejected:
            self.backlog = False

    def on_connected(self, *_args) -> None:
        self.in_flight.clear()  # the store is the truth: offer everything pending again
        self.backlog = True
        self.pump()

    def on_disconnected(self, *_args) -> None:
        self.in_flight.clear()
        self.backlog = True

    def on_delivered(self, ref: str) -> None:
        self.in_flight.pop(ref, None)
        if self.repeat_at.get(ref) is not None:
            self.repeat_at[ref] = self.clock.mono_ms() + self.alarm_repeat_ms
            return
        # With `defer`, the mark is visible at once (nothing re-offers it) and committed with
        # the rest of this batch of PUBACKs. A crash before that commit publishes it again
        # with the same ref: the at-least-once the platform deduplicates anyway.
        if not self.store.mark_delivered(ref, self.clock.wall_ms(), commit=self.defer is None):
            return
        if self.defer is not None and not self._commit_queued:
            self._commit_queued = True
            self.defer(self._commit_marks)
        self.counters["delivered"] += 1
        if self.faults.get(206):
            self.hub_fault_cleared(206)
        ev = self.store.get(ref)
        if ev is not None and ev.alarm and ev.state < 2 and self._is_alarm(ev.payload_json):
            now = self.clock.mono_ms()
            self.repeat_at[ref] = now + self.alarm_repeat_ms
            self.repeat_until[ref] = now + self.alarm_repeat_for_ms
        if ev is not None and ev.device_id != HUB_SELF:
            self._ack_if_near(ref, F.ACK_DELIVERED)
        if len(self.in_flight) < PUMP_LOW_WATER:
            self.pump()

    def _commit_marks(self) -> None:
        self._commit_queued = False
        self.store.commit()

    @staticmethod
    def _is_alarm(payload: str) -> bool:
        return any(f'"type":"{t}"' in payload for t in ALARM_TYPES)

    def on_rejected(self, ref: str, rejection) -> None:
        self.in_flight.pop(ref, None)
        self.rejected[ref] = self.clock.mono_ms() + 60_000  # offered again in a minute
        self.backlog = True
        self.hub_fault(206, f"platform refused {ref}: {rejection}")

    def stop_repeating(self, ref: str) -> None:
        self.repeat_at.pop(ref, None)
        self.repeat_until.pop(ref, None)

    def repeat_alarms(self, now: int) -> None:
        for ref, at in list(self.repeat_at.items()):
            if now < at or ref in self.in_flight:
                continue
            ev = self.store.get(ref)
            if ev is None or ev.state >= 2 or now > self.repeat_until.get(ref, 0):
                self.repeat_at.pop(ref, None)
                self.repeat_until.pop(ref, None)
                continue
            if getattr(self.publisher, "connected", False) and self.publisher.publish_event(
                ref, self.event_topic, ev.payload_json.encode()
            ):
                self.in_flight[ref] = now
                self.counters["repeated"] += 1
            self.repeat_at[ref] = now + self.alarm_repeat_ms

    def _tick_outbox(self, now: int) -> None:
        """Repeat alarms still awaiting an operator, re-offer what got no PUBACK, pump."""
        self.repeat_alarms(now)
        for ref, t in list(self.in_flight.items()):
            if now - t > 120_000:  # no PUBACK in 2 min on a live link: offer it again
                del self.in_flight[ref]
                self.backlog = True
        self.pump()
