"""Platform -> hub requests and hub -> platform responses of the MQTT contract.

Import these through `hub.contract`, which re-exports them (docs/mqtt.md describes both
halves as one contract); this module only keeps the request half in a file of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

from hub.contract_events import (
    _HEX8,
    HUB_DEVICE,
    MAX_REQUEST_BYTES,
    PREFIX,
    REQUEST_KINDS,
    RESULT_TEXT,
    VERSION,
    ContractError,
    Device,
    Result,
    _header,
    _text,
    _time,
    encode,
    parse_ref,
)
from shared import frame

# request name -> setting id in device acknowledgements (docs/protocol.md, "Settings")
_SETTING_IDS = {
    "heartbeat_interval": frame.S_HEARTBEAT_MIN,  # minutes
    "activity_interval": frame.S_SUMMARY_MIN,  # minutes
    "fall_cancel_window": frame.S_CANCEL_S,  # seconds
    "quiet_start": frame.S_QUIET_START_MIN,  # minutes after local midnight
    "quiet_end": frame.S_QUIET_END_MIN,
}
# request name -> (setting id, min, max): the bounds the devices keep (shared/frame.py), so a
# value the hub accepts is the value in force on the device (the firmware clamps the rest)
SETTINGS = {name: (sid, frame.SETTING_LO[sid], frame.SETTING_HI[sid])
            for name, sid in _SETTING_IDS.items()}


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
FLOOR_DEFAULT_MIN = 30  # the detector's floor when neither hub.toml nor the platform sets one


def inactivity_conflict(values: dict[str, int]) -> str | None:
    """What is wrong with a whole set of inactivity values beyond their own bounds, or None."""
    if values.get("floor_min", FLOOR_DEFAULT_MIN) > values.get("ceiling_min", 3000):
        return "floor_min must not exceed ceiling_min"
    return None


def activity_conflict(floor_min: int, intervals: dict[int, int]) -> str | None:
    """Device id -> activity_interval against the inactivity floor, or None. A PIR reports
    ongoing motion only in its summaries, so the hub may hear nothing of a moving resident for
    a whole interval: one as long as the floor could raise a pre-alarm on them."""
    for d, minutes in sorted(intervals.items()):
        if minutes >= floor_min:
            return (f"activity_interval {minutes} of device {d:08x} must be shorter than"
                    f" inactivity_floor_min {floor_min}")
    return None


@dataclass(frozen=True)
class Request:
    kind: str
    transaction: str | int
    device_id: int | None = None  # identify/test: the device; settings: None = the whole home
    ref: str | None = None  # ack: the alarm the operator acknowledged
    operator: str | None = None  # ack: who (free text, optional)
    # settings: (setting id, value), sorted; value None: clear the platform's value
    settings: tuple[tuple[int, int | None], ...] = ()
    inactivity: tuple[tuple[str, int | None], ...] = ()  # ([inactivity] key, value), likewise


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
            n = None if value is None else _integral(value)  # null: clear the platform's
            if n is None and value is not None:
                raise ContractError(Result.INVALID_FORMAT, f"{name} must be an integer or null")
            if n is not None and not lo <= n <= hi:
                raise ContractError(Result.WRONG_DATA, f"{name} must be in {lo}..{hi}")
            if name in SETTINGS:
                pairs.append((sid, n))
            else:
                home.append((INACTIVITY_SETTINGS[name], n))
        if home and device is not None:
            raise ContractError(Result.WRONG_DATA,
                                "inactivity settings are for the whole home: omit device")
        # within the request here; against the values in force in the hub (hub/requests.py)
        given = {k: v for k, v in home if v is not None}
        conflict = inactivity_conflict(given)
        activity, floor = dict(pairs).get(frame.S_SUMMARY_MIN), given.get("floor_min")
        if activity and floor and activity >= floor:
            conflict = f"activity_interval {activity} must be shorter than inactivity_floor_min"
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
