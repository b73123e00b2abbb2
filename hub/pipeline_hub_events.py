"""The hub's own events (faults, restorals, supervision, inactivity) and their numbers.

`HubEvents` is the part of `hub.pipeline.HubCore` that stores and publishes what the hub
raises itself, numbered so that a number is never reused, also across a restart during a
disk fault (the platform deduplicates on ref).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hub import contract, events as E
from hub.store import Record
from hub.store_types import HUB_SELF

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Callable

    from hub.config import Config
    from hub.pipeline import Clock
    from hub.store import Store

log = logging.getLogger("carebeacon.hub")

# Hub event numbers (hub_event): a run starts above the last one committed, above the
# reservation committed, and at or above the wall clock's Unix seconds at start; a number
# ahead of the wall clock is taken only under a committed reservation of this many.
HUB_SEQ_BLOCK = 256
HUB_SEQ_MAX = 2**32 - 1  # the contract's seq (docs/mqtt/schemas/event.json)
HUB_SEQ_STATE = "hub_seq"  # store state: the last number committed with its event
HUB_SEQ_LIMIT_STATE = "hub_seq_limit"  # store state: no number at or above it was taken
# The priority of a hub fault that may mean an elder's alarm was lost: a manual alarm's
FAULT_ALARM_PRIORITY = contract.EVENT_TYPES["manual_alarm"][3]


class HubEvents:
    """Hub events; a base of `hub.pipeline.HubCore`, which sets these and provides
    `_event_json`, `stop_repeating` and `_offer`."""

    cfg: Config
    store: Store
    clock: Clock
    counters: Counter[str]
    faults: dict[int, str]
    _event_json: Any
    stop_repeating: Any
    _offer: Any

    def _init_hub_seq(self) -> None:
        # hub_seq: the last hub event number taken; the next event gets hub_seq + 1
        last = self.store.get_state(HUB_SEQ_STATE)
        limit = self.store.get_state(HUB_SEQ_LIMIT_STATE)
        self.hub_seq_limit = int.from_bytes(limit, "big") if limit else 0
        start = max(
            int.from_bytes(last, "big") + 1 if last else 1, self.hub_seq_limit, self._wall_seq()
        )
        self.hub_seq = start - 1

    def hub_event(
        self,
        mtype: int,
        mapped: E.Mapped,
        device: int | None = None,
        states_for: Callable[[str], dict[str, bytes]] | None = None,
    ) -> str:
        """Store and publish an event the hub raises itself; returns its ref. `states_for(ref)`
        gives state blobs committed in the same write as the event (a crash cannot keep one
        without the other)."""
        seq = self._next_hub_seq()
        ref = contract.make_ref(self.cfg.hub_id, None, seq)
        wall = self.clock.wall_ms()
        dev = self.cfg.devices.get(device) if device else None
        payload = self._event_json(ref, mapped, dev, wall, wall, None, cancels=mapped.cancels_ref)
        if mapped.cancels_ref:
            self.stop_repeating(mapped.cancels_ref)
        rec = Record(
            device_id=HUB_SELF,
            seq=seq,
            mtype=mtype,
            arg=device or 0,
            event_ms=wall,
            recv_ms=wall,
            recv_mono_ms=self.clock.mono_ms(),
            payload_json=payload,
        )
        states = {HUB_SEQ_STATE: seq.to_bytes(4, "big")}
        if states_for is not None:
            states.update(states_for(ref))
        if self.store.add(rec, states=states).is_new:
            self._offer(ref, payload)
        log.info("hub event %s %s", mapped.type, ref)
        return ref

    def _wall_seq(self) -> int:
        """The wall clock's Unix seconds while it is believed set (0 otherwise): no hub event
        number at or below it can have been taken by a run that ended before this second."""
        s = self.clock.wall_ms() // 1000
        return s if self.clock.local()[2] and 0 < s < HUB_SEQ_MAX else 0

    def _next_hub_seq(self) -> int:
        """The next hub event number, unique across restarts even when the disk fails.

        The number is committed with its event; but an event held in memory (disk failing)
        is published before that commit, so the next run must start above every number
        this one used, committed or not. It starts above the last committed number, the
        committed reservation and the wall clock's seconds at start (_wall_seq); so a
        number at or below the wall clock needs nothing more (a restart takes seconds), and
        one ahead of it (more than one event a second, or a clock that is not set) is taken
        only under a reservation committed first, HUB_SEQ_BLOCK at a time, as the devices
        reserve their frame numbers (shared/seqblock.py). Only when that commit fails too
        (the disk failing while numbers run ahead of the clock) could a number repeat after
        a restart: an alarm is never held back for it; it is logged and counted."""
        n = self.hub_seq + 1
        if n >= self.hub_seq_limit and n > self._wall_seq():
            limit = min(n + HUB_SEQ_BLOCK, HUB_SEQ_MAX + 1)
            if self.store.put_state(HUB_SEQ_LIMIT_STATE, limit.to_bytes(8, "big")):
                self.hub_seq_limit = limit
            else:
                self.counters["hub_seq_unreserved"] += 1
                log.error(
                    "hub event number %d is ahead of the clock and its reservation could not"
                    " be committed (store failing): it could be reused after a restart",
                    n,
                )
        self.hub_seq = n
        return n

    def hub_fault(
        self, code: int, text: str, device: int | None = None, *, alarm: bool = False,
        states: dict[str, bytes] | None = None,
    ) -> None:
        """Raise hub fault `code`. `alarm`: an elder's alarm may be lost with it, so it goes
        out at an alarm's priority (FAULT_ALARM_PRIORITY: an operator calls the elder) and
        is stored alarm-class (forwarded first, never evicted). `states`: blobs committed
        with the event (what says the fault is raised: a crash cannot keep one without the
        other); nothing is written when the fault is already in force with this text."""
        log.error("fault %s: %s", contract.HUB_FAULTS.get(code, code), text)
        if device is None and self.faults.get(code) == text:
            return
        if device is None:
            self.faults[code] = text
        fault = {"code": code, "text": text[:200]}
        priority = FAULT_ALARM_PRIORITY if alarm else None
        self.hub_event(
            E.H_FAULT_ALARM if alarm else E.H_FAULT,
            E.Mapped("fault", fault=fault, priority=priority),
            device=device,
            states_for=None if states is None else lambda ref: states,
        )

    def hub_fault_cleared(self, code: int, states: dict[str, bytes] | None = None) -> None:
        """The restoral of hub fault `code` if it is in force; `states` as for hub_fault."""
        if self.faults.pop(code, None) is not None:
            log.info("fault %s cleared", contract.HUB_FAULTS.get(code, code))
            self.hub_event(E.H_RESTORAL, E.Mapped("restoral", fault={"code": code}),
                           states_for=None if states is None else lambda ref: states)
