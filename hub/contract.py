"""The hub <-> county platform MQTT contract: topics, message builders, request parsing.

Human-readable: docs/mqtt.md. Machine-readable: docs/mqtt/asyncapi.yaml and the JSON Schemas in
docs/mqtt/schemas/. Every builder returns a plain dict (the tests validate each against its
schema); `encode()` makes the wire bytes (compact UTF-8 JSON).

Status codes: we do not have the text of CLC/TS 50134-9 (SCAIP), so `scaip.status_code` is
carebeacon's OWN stable number (`scaip.code_system` = "carebeacon"), never a SCAIP number;
`status_text` uses SCAIP's status names where our notes list them, and a SCAIP gateway maps by
that text. The response result codes 0..7 are SCAIP's (`Result`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
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
    205: "bad_tags", 206: "uplink_rejected", 207: "power",
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
        if type not in ("cancel", "test") or parse_ref(cancels)[0] != hub or cancels == ref:
            raise ValueError(f"only cancel/test name another alarm of this hub: {cancels!r}")
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


# ----- requests (platform -> hub) and responses (hub -> platform) --------------------------------
REQUEST_KINDS = ("ack", "settings", "identify", "test", "list_devices")
SETTINGS = {  # request name -> (setting id in device acknowledgements, min, max); protocol.md
    "heartbeat_interval": (frame.S_HEARTBEAT_MIN, 1, 1440),  # minutes
    "activity_interval": (frame.S_SUMMARY_MIN, 1, 1440),  # minutes
    "fall_cancel_window": (frame.S_CANCEL_S, 0, 255),  # seconds (FALL_SUSPECTED holds 8 bits)
    "quiet_start": (frame.S_QUIET_START_MIN, 0, 1439),  # minutes after local midnight
    "quiet_end": (frame.S_QUIET_END_MIN, 0, 1439),
}


# The whole home's inactivity detector (docs/inactivity.md), tunable per home by the platform:
# hub.toml [inactivity] key -> (lo, hi). A settings request names them "inactivity_<key>".
INACTIVITY_BOUNDS = {
    "floor_min": (30, 600),  # shortest stillness that may raise a pre-alarm
    "ceiling_min": (60, 3000),  # longest stillness before a pre-alarm, whatever was learned
    "default_min": (60, 3000),  # the threshold of a new home until 3 days are learned
    "prealarm_min": (1, 30),  # "are you all right?" before the alarm
    "away_after_min": (1, 120),  # quiet after the front door that means "gone out"
    "away_max_min": (60, 8640),  # longest an away silences the alarm (6 days)
    "margin_pct": (100, 400),  # learned stillness times this, plus the buffer
    "buffer_min": (0, 360),
    "rank": (1, 3),  # 1 = the most still day of the history, 2 = the second ...
}
INACTIVITY_SETTINGS = {f"inactivity_{k}": k for k in INACTIVITY_BOUNDS}


def inactivity_conflict(values: dict[str, int]) -> str | None:
    """What is wrong with a whole set of inactivity values beyond their own bounds, or None."""
    if values.get("floor_min", 30) > values.get("ceiling_min", 3000):
        return "floor_min must not exceed ceiling_min"
    return None


@dataclass(frozen=True)
class Request:
    kind: str
    transaction: str | int
    device_id: int | None = None  # identify/test: the device; settings: None = the whole home
    ref: str | None = None  # ack: the alarm the operator acknowledged
    operator: str | None = None  # ack: who (free text, optional)
    settings: tuple[tuple[int, int], ...] = ()  # settings: (setting id, value), sorted
    inactivity: tuple[tuple[str, int], ...] = ()  # settings: ([inactivity] key, value), sorted


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _integral(value: Any) -> int | None:
    """JSON Schema's "integer": 5 and 5.0 are, True and 5.5 are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) else None


def _transaction(body: Any) -> str | int | None:
    t = body.get("transaction") if isinstance(body, dict) else None
    if isinstance(t, str) and 1 <= len(t) <= 64:
        return t
    n = _integral(t)
    return n if n is not None and 0 <= n < 2**53 else None


def parse_request(topic: str, payload: bytes | str, *, county: str | None = None,
                  hub_id: str | None = None) -> Request:
    """A valid request, or ContractError carrying the kind and transaction it could read."""
    raw = payload.encode(errors="replace") if isinstance(payload, str) else bytes(payload)
    parts = topic.split("/") if isinstance(topic, str) else []
    ours = len(parts) == 6 and f"{parts[0]}/{parts[1]}" == PREFIX and parts[4] == "request"
    kind = parts[5] if ours and parts[5] in REQUEST_KINDS else None
    body: Any = None
    err: ContractError | None = None
    if len(raw) > MAX_REQUEST_BYTES:
        err = ContractError(Result.TOO_LONG, f"request over {MAX_REQUEST_BYTES} bytes")
    else:
        try:
            body = json.loads(raw.decode(), parse_constant=_refuse_constant, parse_float=_finite)
            encode(body)  # refuses lone surrogates ("\\ud800"): they could not be echoed or logged
        except (ValueError, RecursionError):
            err = ContractError(Result.INVALID_FORMAT, "payload is not UTF-8 JSON")
    transaction = _transaction(body)
    if err is None:
        if not ours:
            err = ContractError(Result.INVALID_FORMAT, "not a request topic")
        elif (county and parts[2] != county) or (hub_id and parts[3] != hub_id):
            err = ContractError(Result.WRONG_DATA, "request for another hub")
        elif kind is None:
            err = ContractError(Result.NOT_TREATED, "unknown request kind")
        elif not isinstance(body, dict):
            err = ContractError(Result.INVALID_FORMAT, "payload must be a JSON object")
        elif "transaction" not in body:
            err = ContractError(Result.MANDATORY_MISSING, "transaction missing")
        elif transaction is None:
            err = ContractError(Result.INVALID_FORMAT,
                                "transaction: 1..64 characters or an integer in 0..2**53-1")
        elif "v" in body and _integral(body["v"]) != VERSION:
            err = ContractError(Result.NOT_TREATED, f"contract version {VERSION} only")
    if err is None:
        assert kind is not None and transaction is not None
        try:
            return _request(kind, transaction, body, parts[3])
        except ContractError as e:
            err = e
    err.kind, err.transaction = kind, transaction
    raise err


def _device(body: dict, required: bool) -> int | None:
    if "device" not in body:
        if required:
            raise ContractError(Result.MANDATORY_MISSING, "device missing")
        return None
    d = body["device"]
    if not isinstance(d, str):
        raise ContractError(Result.INVALID_FORMAT, "device must be a string")
    if not _HEX8.fullmatch(d) or d == HUB_DEVICE:
        raise ContractError(Result.WRONG_DATA, "device: 8 lower-case hex digits, not 00000000")
    return int(d, 16)


def _request(kind: str, transaction: str | int, body: dict, hub_id: str) -> Request:
    if kind == "ack":
        if "ref" not in body:
            raise ContractError(Result.MANDATORY_MISSING, "ref missing")
        ref, op = body["ref"], body.get("operator")
        if not isinstance(ref, str):
            raise ContractError(Result.INVALID_FORMAT, "ref must be a string")
        try:
            ref_hub = parse_ref(ref)[0]
        except ValueError:
            raise ContractError(Result.WRONG_DATA, "ref is not a message reference") from None
        if ref_hub != hub_id:
            raise ContractError(Result.WRONG_DATA, "ref of another hub")
        if "operator" in body and (not isinstance(op, str) or len(op) > 64):
            raise ContractError(Result.INVALID_FORMAT, "operator: a string, 64 characters at most")
        return Request(kind, transaction, ref=ref, operator=op)
    if kind == "settings":
        device = _device(body, required=False)
        if "settings" not in body:
            raise ContractError(Result.MANDATORY_MISSING, "settings missing")
        s = body["settings"]
        if not isinstance(s, dict) or not s:
            raise ContractError(Result.INVALID_FORMAT, "settings must be a non-empty object")
        pairs, home = [], []
        for name, value in s.items():
            if name in SETTINGS:
                sid, lo, hi = SETTINGS[name]
            elif name in INACTIVITY_SETTINGS:
                lo, hi = INACTIVITY_BOUNDS[INACTIVITY_SETTINGS[name]]
            else:
                raise ContractError(Result.WRONG_DATA, f"unknown setting {name[:40]!r}")
            n = _integral(value)
            if n is None:
                raise ContractError(Result.INVALID_FORMAT, f"{name} must be an integer")
            if not lo <= n <= hi:
                raise ContractError(Result.WRONG_DATA, f"{name} must be in {lo}..{hi}")
            if name in SETTINGS:
                pairs.append((sid, n))
            else:
                home.append((INACTIVITY_SETTINGS[name], n))
        if home and device is not None:
            raise ContractError(Result.WRONG_DATA,
                                "inactivity settings are for the whole home: omit device")
        conflict = inactivity_conflict(dict(home))
        if conflict:
            raise ContractError(Result.WRONG_DATA, conflict)
        return Request(kind, transaction, device_id=device, settings=tuple(sorted(pairs)),
                       inactivity=tuple(sorted(home)))
    if kind in ("identify", "test"):
        return Request(kind, transaction, device_id=_device(body, required=True))
    return Request(kind, transaction)  # list_devices


def response(*, hub: str, county: str, kind: str | None, transaction: str | int | None,
             result: Result | int = Result.OK, text: str | None = None, data: dict | None = None,
             time: dt.datetime | float | None = None) -> dict:
    """The answer to a request of `kind` (unknown kind: an error response); publish it on
    response_topic(county, hub, kind)."""
    result = Result(result)
    msg = {**_header(hub, county), "kind": kind if kind in REQUEST_KINDS else "error",
           "transaction": transaction, "result": int(result), "result_text": RESULT_TEXT[result],
           "time": _time(time)}
    if text is not None:
        msg["text"] = _text(text, "text", 200)
    if data is not None:
        if not isinstance(data, dict):
            raise ValueError("data must be an object")
        msg["data"] = data
    return msg


def error_response(hub: str, county: str, err: ContractError) -> dict:
    return response(hub=hub, county=county, kind=err.kind, transaction=err.transaction,
                    result=err.result, text=err.text[:200])


def device_entry(device: Device, online: bool | None) -> dict:
    """One element of data.devices in the list_devices response."""
    state = "unknown" if online is None else ("online" if online else "offline")
    return {**device.to_json(), "state": state}
