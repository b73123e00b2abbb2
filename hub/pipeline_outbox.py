"""The hub core's outbox: stored events offered to the platform until its broker confirms them.

`Outbox` is the part of `hub.pipeline.HubCore` that applies rules 4 and 5 of hub/pipeline.py:
it offers pending events to the publisher (`hub.uplink.Uplink` or a test double), follows them
in flight until `on_delivered` or `on_rejected`, and publishes a delivered alarm again (same
ref) until an operator acknowledges it.

An event the platform's broker refuses (a PUBACK failure code, or 0x10 "no matching
subscribers": docs/mqtt.md, delivery rules) is not delivered: it stays pending, its device
hears no DELIVERED (an elder's alarm stays at "received" and the device keeps sending it), and
it is offered again later (an alarm after `REFUSED_ALARM_RETRY_MS`, anything else after
`REFUSED_RETRY_MS`). The refusals are one fault, `uplink_rejected` (206): raised and logged once
per reason code while they last, not per event, and never about the refusal of an
`uplink_rejected` event itself (a refused fault event raising another fault event was an
endless loop: hundreds of stored events a second, none ever pruned). It clears (a restoral)
when every refused event has been accepted, or will not be offered again.
"""

from __future__ import annotations

import json
import logging
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

log = logging.getLogger("carebeacon.hub")

ALARM_TYPES = ("manual_alarm", "automatic_alarm")
UPLINK_REJECTED = 206  # contract.HUB_FAULTS
REFUSED_RETRY_MS = 60_000  # a refused event is offered again after this...
REFUSED_ALARM_RETRY_MS = 15_000  # ...an alarm sooner: the elder's call waits on it
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
# Alarm refs remembered as cancelled or superseded (never repeated again): far more than can be
# in flight (PUMP_MAX_IN_FLIGHT) or repeating at once.
SUPERSEDED_KEPT = 1024


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
        # ref -> reason (PUBACK code) of its last refusal, until it is accepted (or will not be
        # offered again); `uplink_rejected` lasts while this is not empty
        self.refused: dict[str, int | str] = {}
        # reasons seen while it lasts -> whether a fault was raised for it (else only logged)
        self.refusal_reasons: dict[int | str, bool] = {}
        self._refusals_checked = 0  # mono ms
        self.repeat_at: dict[str, int] = {}  # delivered alarm ref -> mono ms to publish again
        self.superseded: dict[str, None] = {}  # alarm refs cancelled or superseded, oldest first
        self.repeat_until: dict[str, int] = {}

    def _resume_repeats(self, now: int) -> None:
        # a restarted hub resumes repeating the alarms no operator has acknowledged yet,
        # unless the elder cancelled them or a later event superseded them
        wall = self.clock.wall_ms()
        awaiting = self.store.awaiting_help(wall - self.alarm_repeat_for_ms)
        if awaiting:
            # every stored cancel, once at start: not by time (an alarm delivered after a long
            # outage, a wall clock stepped), nor by store order (a device's cancel may reach
            # the hub before the retry of the alarm it names)
            for ev in self.store.superseding():
                cancels = json.loads(ev.payload_json).get("cancels")
                if cancels:
                    self._superseded(cancels)
        for ev in awaiting:
            if self._is_alarm(ev.payload_json) and ev.ref not in self.superseded:
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
        read_errors = self.store.read_errors
        pending = self.store.pending(limit=limit, exclude=exclude)
        for ev in pending:
            if not ev.payload_json:
                continue
            if not self.publisher.publish_event(ev.ref, self.event_topic, ev.payload_json.encode()):
                return
            self.in_flight[ev.ref] = now
            self.rejected.pop(ev.ref, None)
        # Saw the whole queue and sent it all; a refused event waits, and a store whose file
        # is not open (memory only) or could not be read may hold more: keep looking then.
        if (len(pending) < limit and not self.rejected and self.store.file_open
                and self.store.read_errors == read_errors):
            self.backlog = False

    def on_connected(self, *_args) -> None:
        self.in_flight.clear()  # the store is the truth: offer everything pending again
        self.rejected.clear()  # refused ones too: a new connection may be accepted
        self.backlog = True
        self.pump()

    def on_disconnected(self, *_args) -> None:
        self.in_flight.clear()
        self.backlog = True

    def on_delivered(self, ref: str) -> None:
        self.in_flight.pop(ref, None)
        self.rejected.pop(ref, None)
        if self.refused.pop(ref, None) is not None and not self.refused:
            self._refusals_over()
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
        ev = self.store.get(ref)
        if (
            ev is not None
            and ev.alarm
            and ev.state < 2
            and ref not in self.superseded  # e.g. cancelled while its publish was in flight
            and self._is_alarm(ev.payload_json)
        ):
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
        """The broker refused `ref` (`rejection`: hub.uplink_pubacks.Rejection): not delivered,
        so it stays pending and is offered again later; reported once per reason code."""
        self.in_flight.pop(ref, None)
        self.counters["uplink_refused"] += 1
        ev = self.store.get(ref)
        wait = REFUSED_ALARM_RETRY_MS if ev is not None and ev.alarm else REFUSED_RETRY_MS
        self.rejected[ref] = self.clock.mono_ms() + wait
        self.backlog = True
        reason = getattr(rejection, "code", None)
        if reason is None:
            reason = str(rejection)
        self.refused[ref] = reason
        faulted = self.refusal_reasons.get(reason)
        if faulted:
            return  # reported already: it lasts
        if ev is not None and self._is_refusal_report(ev.device_id, ev.payload_json):
            # never a fault about the refused report of the refusals: that looped forever
            if faulted is None:
                log.error("platform refused %s, a report of refused events: %s", ref, rejection)
            self.refusal_reasons[reason] = False
            return
        self.refusal_reasons[reason] = True
        # One fault event per reason code while refusals last (hub_fault logs it once): its
        # ref names the first refused event only, the others are counted (uplink_refused).
        self.hub_fault(UPLINK_REJECTED, f"platform refuses events: {rejection} (first {ref})")

    @staticmethod
    def _is_refusal_report(device_id: int, payload: str) -> bool:
        """A hub `fault` or `restoral` event about `uplink_rejected`."""
        if device_id != HUB_SELF or not payload:
            return False
        try:
            fault = json.loads(payload).get("fault") or {}
        except (ValueError, AttributeError):
            return False
        return isinstance(fault, dict) and fault.get("code") == UPLINK_REJECTED

    def _refusals_over(self) -> None:
        log.info(
            "platform accepts events again (refused: %s)",
            ", ".join(f"0x{r:02X}" if isinstance(r, int) else r for r in self.refusal_reasons),
        )
        self.refusal_reasons.clear()
        self.hub_fault_cleared(UPLINK_REJECTED)

    def _forget_refusals(self, now: int) -> None:
        """Once a minute: refused refs that nothing will offer again (a refused repeat of an
        alarm since acknowledged or cancelled, an event gone from the store) no longer hold
        `uplink_rejected` up. A refused event still pending always does."""
        if not self.refused or now - self._refusals_checked < REFUSED_RETRY_MS:
            return
        self._refusals_checked = now
        for ref in list(self.refused):
            if ref in self.in_flight or ref in self.repeat_at:
                continue
            ev = self.store.get(ref)
            if ev is None or ev.state >= 1:
                del self.refused[ref]
                self.rejected.pop(ref, None)
        if not self.refused:
            self._refusals_over()

    def stop_repeating(self, ref: str) -> None:
        """The alarm was cancelled or superseded: no operator ack is coming for it."""
        self._superseded(ref)
        self.repeat_at.pop(ref, None)
        self.repeat_until.pop(ref, None)

    def _superseded(self, ref: str) -> None:
        self.superseded[ref] = None
        if len(self.superseded) > SUPERSEDED_KEPT:
            del self.superseded[next(iter(self.superseded))]

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
                self.rejected.pop(ref, None)  # a refused repeat waits for its next turn only
                self.counters["repeated"] += 1
            self.repeat_at[ref] = now + self.alarm_repeat_ms

    def _tick_outbox(self, now: int) -> None:
        """Repeat alarms still awaiting an operator, re-offer what got no PUBACK, pump."""
        self.repeat_alarms(now)
        self._forget_refusals(now)
        for ref, t in list(self.in_flight.items()):
            if now - t > 120_000:  # no PUBACK in 2 min on a live link: offer it again
                del self.in_flight[ref]
                self.backlog = True
        self.pump()
