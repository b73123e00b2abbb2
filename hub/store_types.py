"""Value types of the hub store (`hub/store.py`): records in, events out, add results, errors."""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
from collections.abc import Mapping
from typing import Any

from hub import contract
from shared.frame import ACK_DELIVERED, ACK_HELP, ACK_STORED, T_MAX, is_alarm

# Event states, in the order an event climbs them (never down).
PENDING = 0  # stored, not yet confirmed by the platform's broker
DELIVERED = 1  # the broker PUBACKed it
HELP = 2  # an operator acknowledged it on the platform

_U32 = 0xFFFFFFFF
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1  # what an SQLite INTEGER holds
HUB_SELF = 0  # device_id of an event the hub raises itself (devices are never 0)


class StoreError(Exception):
    """The store cannot be opened or used as asked; the message names the path and the reason."""


@functools.cache
def _hub_alarm_types() -> frozenset[int]:
    from hub.events import HUB_ALARM_TYPES  # imported late: it pulls in the configuration code

    return frozenset(HUB_ALARM_TYPES)


def check_hub_id(hub_id: object) -> str:
    """The hub id rule of the MQTT contract (it prefixes every ref the platform dedups on)."""
    try:
        return contract.check_id(hub_id, "hub_id")
    except ValueError as e:
        raise ValueError("%s (it must be unique per hub: the platform deduplicates on refs"
                         " that start with it)" % e) from None


def check_blob(name: object, blob: object) -> bytes:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ValueError("state name %r: must be a non-empty str of at most 200 chars" % (name,))
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise ValueError("state %r: value must be bytes, not %s" % (name, type(blob).__name__))
    return bytes(blob)


DEVICE_FIELDS = ("last_seen_ms", "rssi", "battery", "availability")


def check_device_fields(device_id: object, fields: Mapping[str, Any]) -> None:
    bad = set(fields) - set(DEVICE_FIELDS)
    if bad:
        raise ValueError("touch_device: unknown fields %s (known: %s)"
                         % (", ".join(sorted(bad)), ", ".join(DEVICE_FIELDS)))
    if not isinstance(device_id, int) or not 1 <= device_id <= _U32:
        raise ValueError("touch_device: device_id=%r must be in 1..2**32-1" % (device_id,))


def make_ref(hub_id: str, device_id: int, seq: int) -> str:
    """The message reference: the same for every retry of one frame, across restarts.

    Built by hub.contract.make_ref, the one definition shared with the MQTT messages.
    """
    return contract.make_ref(hub_id, None if device_id == HUB_SELF else device_id, seq)


def _int(name: str, v: object, lo: int, hi: int, optional: bool = False) -> None:
    if v is None and optional:
        return
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError("record field %s=%r: must be an integer in %d..%d" % (name, v, lo, hi))


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One verified frame, as the hub daemon hands it to `Store.add`.

    device_id 0 (HUB_SELF): an event the hub raises itself, with a type from hub/events.py
    (0x80..0xFF) and the hub's own seq; its ref reads <hub_id>:00000000:<seq>.

    `event_ms` is wall-clock epoch ms of the event (receive time minus the frame's age);
    `payload_json` is the platform message body, built by the caller, opaque to the store
    (it should carry the reference from `Store.ref_for`).
    """

    device_id: int
    seq: int
    mtype: int
    arg: int
    event_ms: int
    recv_ms: int
    payload_json: str
    recv_mono_ms: int | None = None
    rssi: int | None = None
    attempt: int = 0
    delivered_ms: int | None = None  # set: nothing to send (a local-only event); stored as
    # DELIVERED in the same commit, saving the fsync of a separate mark_delivered

    def __post_init__(self) -> None:
        _int("device_id", self.device_id, HUB_SELF, _U32)
        _int("seq", self.seq, 1, _U32)
        if self.device_id == HUB_SELF:  # the hub's own types (hub/events.py); arg: a device id
            _int("mtype", self.mtype, 0x80, 0xFF)
            _int("arg", self.arg, 0, _U32)
        else:  # a radio frame (docs/protocol.md)
            _int("mtype", self.mtype, 1, T_MAX)
            _int("arg", self.arg, 0, 0xFFFFFF)
        # Times are not range-checked: an alarm is never refused over a wrong clock.
        _int("event_ms", self.event_ms, _I64_MIN, _I64_MAX)
        _int("recv_ms", self.recv_ms, _I64_MIN, _I64_MAX)
        _int("recv_mono_ms", self.recv_mono_ms, _I64_MIN, _I64_MAX, optional=True)
        _int("rssi", self.rssi, _I64_MIN, _I64_MAX, optional=True)
        _int("attempt", self.attempt, 0, 255)
        _int("delivered_ms", self.delivered_ms, _I64_MIN, _I64_MAX, optional=True)
        if not isinstance(self.payload_json, str):
            raise ValueError("record field payload_json: must be a str, got %s"
                             % type(self.payload_json).__name__)

    @property
    def alarm(self) -> bool:
        """Alarm-class (never evicted): frame types 1..6, hub events.HUB_ALARM_TYPES."""
        if self.device_id == HUB_SELF:
            return self.mtype in _hub_alarm_types()
        return is_alarm(self.mtype)

    @classmethod
    def coerce(cls, rec: Record | Mapping[str, Any]) -> Record:
        if isinstance(rec, Record):
            return rec
        if isinstance(rec, Mapping):
            unknown = set(rec) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError("record has unknown fields: %s" % ", ".join(sorted(unknown)))
            try:
                return cls(**rec)
            except TypeError as e:  # a missing field
                raise ValueError("record: %s" % e) from None
        raise ValueError("record must be a hub.store.Record or a mapping, not %s"
                         % type(rec).__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """A stored (or, while the disk fails, memory-held) event, as `pending`/`get` return it.

    `id` is the uplink order (None while only in memory); `durable` is True when the event
    is committed to disk.
    """

    id: int | None
    ref: str
    device_id: int
    seq: int
    mtype: int
    arg: int
    alarm: bool
    event_ms: int
    recv_ms: int
    recv_mono_ms: int | None
    rssi: int | None
    attempt: int
    payload_json: str
    state: int
    delivered_ms: int | None
    help_ms: int | None
    durable: bool

    @property
    def ack_status(self) -> int | None:
        return ack_status(self.state, self.durable)


EVENT_COLUMNS = (
    "id, ref, device_id, seq, mtype, arg, alarm, event_ms, recv_ms, recv_mono_ms, rssi,"
    " attempt, payload_json, state, delivered_ms, help_ms"
)


def event_from_row(r: sqlite3.Row | tuple[Any, ...], durable: bool) -> Event:
    """An Event from a row selected with EVENT_COLUMNS (or a memory row with id first)."""
    return Event(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9], r[10], r[11],
                 r[12], r[13], r[14], r[15], durable)


def ack_status(state: int, durable: bool) -> int | None:
    """The acknowledgement status a device may be sent for an event in `state`, or None.

    A pending event only held in memory may not be called STORED (it would not survive a
    restart): the device must keep retrying until DELIVERED.
    """
    if state >= HELP:
        return ACK_HELP
    if state == DELIVERED:
        return ACK_DELIVERED
    return ACK_STORED if durable else None


class Added(tuple):  # type: ignore[type-arg]
    """What `Store.add` returns: the tuple (event_id, is_new, durable), plus

    `.ref`     the message reference;
    `.status`  the acknowledgement status to send the device now (ACK_STORED / ACK_DELIVERED /
               ACK_HELP), or None: do not acknowledge (not durable yet, or unknown).
    """

    ref: str
    status: int | None

    def __new__(
        cls, event_id: int | None, is_new: bool, durable: bool, ref: str, status: int | None
    ) -> Added:
        self = super().__new__(cls, (event_id, is_new, durable))
        self.ref = ref
        self.status = status
        return self

    @property
    def event_id(self) -> int | None:
        return self[0]  # type: ignore[no-any-return]

    @property
    def is_new(self) -> bool:
        return self[1]  # type: ignore[no-any-return]

    @property
    def durable(self) -> bool:
        return self[2]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return "Added(event_id=%r, is_new=%r, durable=%r, ref=%r, status=%r)" % (
            *self, self.ref, self.status)


@dataclasses.dataclass(frozen=True, slots=True)
class PruneResult:
    expired: int = 0  # delivered routine events older than the retention period
    trimmed: int = 0  # oldest delivered routine events removed to get under max_events
    remaining: int = 0  # events left on disk
    over_capacity: int = 0  # events still above max_events (all alarms or undelivered)
    error: str | None = None  # why the prune could not write, if it could not
