"""What each verified frame means to the county platform.

A frame either becomes a platform event (an alarm, a cancel, a test, a fault,
low battery, worn / not worn) or stays local: routine reports (activity
summaries, heartbeats, first motion after stillness, doors) feed supervision
and the whole-home inactivity detector and are kept in the store, but sending
every five-minute summary to a county console would bury the alarms.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub import contract
from hub.config import Device
from shared import frame as F
from shared.frame import Frame


@dataclass(frozen=True)
class Mapped:
    type: str  # contract event type
    cause: str | None = None
    cancels_seq: int | None = None  # seq of the same device's alarm this cancels or supersedes
    priority: int | None = None
    battery: int | None = None
    fault: dict | None = None
    info: dict | None = None
    cancels_ref: str | None = None  # hub events: the hub alarm this one cancels


# Message types of events the hub raises itself (stored with device_id 0). Device frames use
# 1..14 (shared/frame.py); these never travel over the radio.
H_INACTIVITY_ALARM = 0x80  # alarm class: never evicted from the store
H_INACTIVITY_CANCEL = 0x81  # alarm class
H_SUPERVISION_MISSING = 0x82
H_SUPERVISION_RESTORED = 0x83
H_FAULT = 0x84
H_RESTORAL = 0x85
H_FAULT_ALARM = 0x86  # alarm class: a hub fault at alarm priority (an alarm may be lost)
HUB_ALARM_TYPES = (H_INACTIVITY_ALARM, H_INACTIVITY_CANCEL, H_FAULT_ALARM)


def _back(f: Frame) -> int | None:
    """The seq an arg of 'distance back' points to (None if there is none)."""
    return f.seq - f.arg if 0 < f.arg < f.seq else None


def battery_of(f: Frame) -> int | None:
    if f.mtype in (F.T_HEARTBEAT, F.T_LOW_BATTERY):
        pct = f.arg >> 16
        return pct if pct <= 100 else None
    return None


def map_frame(f: Frame) -> Mapped | None:
    """The platform event for a frame, or None when the frame stays local."""
    t = f.mtype
    if t == F.T_SOS:
        return Mapped("manual_alarm")
    if t == F.T_SOS_CANCEL:
        back = _back(f)
        return Mapped("cancel", cancels_seq=back) if back else None
    if t == F.T_TEST:
        return Mapped("test", cancels_seq=_back(f))
    if t == F.T_FALL_SUSPECTED:
        # early warning while the wearer's cancel window runs: an alarm, below a confirmed fall
        return Mapped("automatic_alarm", cause="fall_suspected", priority=3)
    if t == F.T_FALL_CONFIRMED:
        # supersedes its FALL_SUSPECTED (arg = distance back; 0: none was sent), so the
        # platform keeps one fall alarm active and the hub stops repeating the early warning
        return Mapped("automatic_alarm", cause="fall", cancels_seq=_back(f))
    if t == F.T_FALL_CANCELLED:
        back = _back(f)
        return Mapped("cancel", cancels_seq=back) if back else None  # nothing was raised
    if t == F.T_LOW_BATTERY:
        return Mapped("battery_low", battery=battery_of(f))
    if t == F.T_FAULT:
        code, raised, detail = f.arg >> 16, (f.arg >> 8) & 0xFF, f.arg & 0xFF
        if code not in contract.DEVICE_FAULTS:
            return None  # newer firmware's code: kept in the store, logged by the caller
        fault = {"code": code, "detail": detail}
        return Mapped("fault" if raised else "restoral", fault=fault)
    if t == F.T_WORN:
        return Mapped("information", info={"kind": "worn"})
    if t == F.T_NOT_WORN:
        return Mapped("information", info={"kind": "not_worn"})
    return None  # ACTIVITY, HEARTBEAT, MOTION, DOOR: local


def contract_device(d: Device) -> contract.Device:
    return contract.Device(id=d.id, kind=d.kind, location=d.location, room=d.room)
