"""The event half of the MQTT contract (hub -> platform): topics, refs, events, state,
availability, and the helpers the request half builds on. Import through `hub.contract`."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from shared import frame

PREFIX = "carebeacon/v1"
VERSION = 1  # the "v" of every message; bumped only by an incompatible change
MAX_REQUEST_BYTES = 4096  # larger requests are refused with Result.TOO_LONG
HUB_DEVICE = "00000000"  # device part of the ref of a hub's own event (devices are never 0)

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # county, hub id: one topic level; hub id = cert CN
_HOUSEHOLD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_REF = re.compile(r"([a-z0-9][a-z0-9_-]{0,63}):([0-9a-f]{8}):([1-9][0-9]{0,9})")
UTC = dt.UTC
REQUEST_KINDS = ("ack", "settings", "identify", "test", "list_devices")  # docs/mqtt.md


class Result(IntEnum):
    """Response result codes, as SCAIP defines them."""

    OK = 0
    TOO_LONG = 1
    INVALID_FORMAT = 2
    WRONG_DATA = 3
    HOLD = 4
    NOT_TREATED = 5
    BUSY = 6
    MANDATORY_MISSING = 7


RESULT_TEXT = {
    Result.OK: "ok", Result.TOO_LONG: "too long", Result.INVALID_FORMAT: "invalid format",
    Result.WRONG_DATA: "wrong data", Result.HOLD: "hold", Result.NOT_TREATED: "not treated",
    Result.BUSY: "busy", Result.MANDATORY_MISSING: "mandatory field missing",
}


class ContractError(ValueError):
    """A refused request: `result` is the code to answer with (never OK); `kind` and
    `transaction` are what could be read of the request, for the error response."""

    def __init__(self, result: Result | int, text: str, *, kind: str | None = None,
                 transaction: str | int | None = None):
        super().__init__(f"{Result(result).name}: {text}")
        self.result = Result(result)
        self.text = text
        self.kind = kind
        self.transaction = transaction


# ----- topics and values ------------------------------------------------------------------------
def check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"{what} must match {_ID.pattern}: {value!r}")
    return value


def household_ok(value: Any) -> bool:
    return isinstance(value, str) and bool(_HOUSEHOLD.fullmatch(value))


def base_topic(county: str, hub_id: str) -> str:
    return f"{PREFIX}/{check_id(county, 'county')}/{check_id(hub_id, 'hub id')}"


def event_topic(county: str, hub_id: str) -> str:
    return base_topic(county, hub_id) + "/event"


def state_topic(county: str, hub_id: str) -> str:
    return base_topic(county, hub_id) + "/state"


def availability_topic(county: str, hub_id: str, device_id: int) -> str:
    return f"{base_topic(county, hub_id)}/device/{device_hex(device_id)}/availability"


def request_topic(county: str, hub_id: str, kind: str) -> str:
    return f"{base_topic(county, hub_id)}/request/{kind}"


def request_filter(county: str, hub_id: str) -> str:
    return base_topic(county, hub_id) + "/request/+"


def response_topic(county: str, hub_id: str, kind: str | None) -> str:
    """.../response/<kind>; a request of no known kind is answered on .../response/error."""
    return f"{base_topic(county, hub_id)}/response/{kind if kind in REQUEST_KINDS else 'error'}"


def device_hex(device_id: int) -> str:
    return f"{_int(device_id, 'device id', 1, 2**32 - 1):08x}"


def make_ref(hub_id: str, device_id: int | None, seq: int) -> str:
    """The message reference "<hub_id>:<device id as 8 hex digits>:<seq>" (device None = hub)."""
    dev = HUB_DEVICE if device_id is None else device_hex(device_id)
    return f"{check_id(hub_id, 'hub id')}:{dev}:{_int(seq, 'seq', 1, 2**32 - 1)}"


def parse_ref(ref: Any) -> tuple[str, int | None, int]:
    """(hub_id, device_id or None for the hub, seq); ValueError if `ref` is not a reference."""
    m = _REF.fullmatch(ref) if isinstance(ref, str) else None
    if not m or int(m.group(3)) >= 2**32:
        raise ValueError(f"not a message reference: {ref!r}")
    return m.group(1), (int(m.group(2), 16) or None), int(m.group(3))


def iso_time(t: dt.datetime | float) -> str:
    """ISO 8601 UTC with milliseconds, 2025-03-01T08:15:30.250Z; numbers are Unix seconds."""
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        t = dt.datetime.fromtimestamp(t, UTC)
    if not isinstance(t, dt.datetime) or t.tzinfo is None:
        raise ValueError(f"time must be an aware datetime or epoch seconds: {t!r}")
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _time(t: dt.datetime | float | None) -> str:
    return iso_time(dt.datetime.now(UTC) if t is None else t)


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{what} must be a string of at most {limit} characters")
    return value


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{what} must be an integer in {lo}..{hi}: {value!r}")
    return value


def _header(hub: str, county: str) -> dict[str, Any]:
    return {"v": VERSION, "hub": check_id(hub, "hub id"), "county": check_id(county, "county")}


# ----- events -----------------------------------------------------------------------------------
DEVICE_KINDS = ("button", "pir", "bracelet")
CAUSES = ("fall", "fall_suspected", "inactivity")
INFO_KINDS = ("activity", "motion", "door", "worn", "not_worn")
_COUNTS = ("motion_count", "interval_min", "still_min")  # info fields, 0..2**24-1

# type -> (carebeacon status code, status text, SCAIP message type, default priority; 0 = urgent)
EVENT_TYPES: dict[str, tuple[int, str, str, int]] = {
    "manual_alarm": (101, "Manual alarm", "alarm", 1),
    "automatic_alarm": (102, "Automatic alarm", "alarm", 1),
    "cancel": (103, "Cancel", "reset", 3),
    "test": (104, "Test", "information", 7),
    "battery_low": (111, "Battery low", "information", 5),
    "supervision_missing": (112, "Radio test transmission missing", "alarm", 4),
    "supervision_restored": (113, "Radio test transmission re-established", "reset", 6),
    "fault": (114, "Fault", "alarm", 4),
    "restoral": (115, "Restoral", "reset", 6),
    "information": (121, "Information", "information", 8),
    "heartbeat": (122, "Heartbeat", "heartbeat", 9),
}
DEVICE_FAULTS = {  # docs/protocol.md fault codes (FAULT frames)
    frame.F_BUTTON_STUCK: "button_stuck", frame.F_PIR_STUCK: "pir_stuck_high",
    frame.F_PIR_SILENT: "pir_silent", frame.F_IMU: "imu",
    frame.F_BOARD_CONFIG: "board_configuration", frame.F_STORAGE: "storage",
    frame.F_RADIO: "radio", frame.F_WATCHDOG_RESET: "watchdog_reset",
}
HUB_FAULTS = {  # faults the hub raises about itself (no device); 200+ never clash with devices
    201: "radio_adapter", 202: "store", 203: "clock_unsynchronised", 204: "replay_too_old",
    205: "bad_tags", 206: "uplink_rejected", 207: "power", 208: "internal_error",
    209: "seq_reused", 210: "sensor_coverage", 211: "identity_in_use",
}


_ALL_FAULTS = {**DEVICE_FAULTS, **HUB_FAULTS}


@dataclass(frozen=True)
class Device:
    id: int
    kind: str  # button | pir | bracelet
    location: str = ""  # free text for the operator, e.g. "bedside, left of the bed"
    room: str = ""  # short room name, e.g. "bedroom"

    def to_json(self) -> dict:
        if self.kind not in DEVICE_KINDS:
            raise ValueError(f"device kind must be one of {DEVICE_KINDS}: {self.kind!r}")
        return {"id": device_hex(self.id), "kind": self.kind,
                "location": _text(self.location, "location", 200),
                "room": _text(self.room, "room", 64)}


def scaip_device_type(device: Device | None, cause: str | None) -> str:
    if cause in ("fall", "fall_suspected"):
        return "fall detector"
    if cause == "inactivity" or (device is not None and device.kind == "pir"):
        return "activity detector"
    return "personal trigger" if device is not None else "local unit"


def build_event(*, ref: str, hub: str, county: str, household: str, type: str,
                event_time: dt.datetime | float, receive_time: dt.datetime | float,
                device: Device | None = None, cause: str | None = None,
                priority: int | None = None, battery: int | None = None, rssi: int | None = None,
                cancels: str | None = None, fault: dict | None = None,
                info: dict | None = None) -> dict:
    """An event (a hub event when `device` is None); ValueError on inconsistent input.

    `fault` = {"code", "detail"?, "text"?} for fault/restoral; `info` = {"kind" in INFO_KINDS,
    "motion_count"?, "interval_min"?, "still_min"?, "door"?: opened|closed} for information."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    code, text, message_type, default_priority = EVENT_TYPES[type]
    ref_hub, ref_dev, seq = parse_ref(ref)
    # A device's own event carries its device's ref; an event the hub raises (about a device,
    # e.g. supervision, or about itself) carries a hub ref with device part 00000000.
    if ref_hub != check_id(hub, "hub id") or ref_dev not in (None, device.id if device else None):
        raise ValueError(f"ref {ref!r} does not name hub {hub!r} and this event's device")
    if (cause is None) != (type != "automatic_alarm") or cause not in (None, *CAUSES):
        raise ValueError(f"automatic_alarm needs a cause in {CAUSES}, other types none: {cause!r}")
    if not isinstance(household, str) or not _HOUSEHOLD.fullmatch(household):
        raise ValueError(f"household must match {_HOUSEHOLD.pattern}: {household!r}")
    msg = {**_header(hub, county), "ref": ref, "seq": seq, "household": household, "type": type}
    if device is not None:
        msg["device"] = device.to_json()
    if cause is not None:
        msg["cause"] = cause
    msg["scaip"] = {"code_system": "carebeacon", "status_code": code, "status_text": text,
                    "device_type": scaip_device_type(device, cause), "message_type": message_type}
    msg["priority"] = _int(default_priority if priority is None else priority, "priority", 0, 9)
    msg["event_time"] = iso_time(event_time)
    msg["receive_time"] = iso_time(receive_time)
    if battery is not None:
        msg["battery"] = _int(battery, "battery", 0, 100)
    if rssi is not None:
        msg["rssi"] = _int(rssi, "rssi", -127, 20)
    if type == "cancel" and cancels is None:
        raise ValueError("a cancel must name the alarm it cancels")
    if cancels is not None:
        # a confirmed fall supersedes its fall_suspected early warning
        may = type in ("cancel", "test") or (type == "automatic_alarm" and cause == "fall")
        if not may or parse_ref(cancels)[0] != hub or cancels == ref:
            raise ValueError(
                f"only cancel/test/a confirmed fall name another alarm of this hub: {cancels!r}")
        msg["cancels"] = cancels
    if (type in ("fault", "restoral")) != (fault is not None):
        raise ValueError("fault and restoral events (and only they) carry `fault`")
    if fault is not None:
        # device codes 1..8 and hub codes 201.. never clash; a hub fault may concern a device
        msg["fault"] = _fault(fault, HUB_FAULTS if device is None else _ALL_FAULTS)
    if (type == "information") != (info is not None):
        raise ValueError("information events (and only they) carry `info`")
    if info is not None:
        msg["info"] = _info(info)
    return msg


def _fault(fault: dict, names: dict[int, str]) -> dict:
    code = fault.get("code")
    if type(code) is not int or code not in names or set(fault) - {"code", "detail", "text"}:
        raise ValueError(f"unknown fault code or fields: {fault!r}")
    out: dict[str, Any] = {"code": code, "name": names[code]}
    if fault.get("detail") is not None:
        out["detail"] = _int(fault["detail"], "fault detail", 0, 255)
    if fault.get("text") is not None:
        out["text"] = _text(fault["text"], "fault text", 200)
    return out


def _info(info: dict) -> dict:
    given = {k: v for k, v in info.items() if v is not None}
    if given.get("kind") not in INFO_KINDS or set(given) - {"kind", "door", *_COUNTS}:
        raise ValueError(f"info needs a kind in {INFO_KINDS} and known fields: {info!r}")
    out = {"kind": given["kind"]}
    out.update({k: _int(given[k], k, 0, 2**24 - 1) for k in _COUNTS if k in given})
    if "door" in given:
        if given["door"] not in ("opened", "closed"):
            raise ValueError("door must be opened or closed")
        out["door"] = given["door"]
    return out


# ----- hub state and device availability (both retained) -----------------------------------------
RADIO_STATUSES = ("ok", "degraded", "down", "unknown")
STATE_REASONS = ("connected", "update", "shutdown", "connection_lost")


def build_state(*, hub: str, county: str, online: bool, reason: str, radio: str = "unknown",
                radio_detail: str | None = None, software: str | None = None,
                time: dt.datetime | float | None = None) -> dict:
    """The retained hub state; the last will is online=False, reason="connection_lost"."""
    if reason not in STATE_REASONS or radio not in RADIO_STATUSES:
        raise ValueError(f"reason must be in {STATE_REASONS}, radio in {RADIO_STATUSES}")
    msg = {**_header(hub, county), "state": "online" if online else "offline", "reason": reason,
           "time": _time(time), "radio": {"status": radio}}
    if radio_detail is not None:
        msg["radio"]["detail"] = _text(radio_detail, "radio detail", 200)
    if software is not None:
        msg["software"] = _text(software, "software", 64)
    return msg


def build_availability(*, hub: str, county: str, device_id: int, online: bool,
                       time: dt.datetime | float | None = None,
                       last_seen: dt.datetime | float | None = None) -> dict:
    msg = {**_header(hub, county), "device": device_hex(device_id),
           "state": "online" if online else "offline", "time": _time(time)}
    if last_seen is not None:
        msg["last_seen"] = iso_time(last_seen)
    return msg
