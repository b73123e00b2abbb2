"""hub/contract.py request parsing: valid requests, refused ones with the right result, requests
for another hub or topic; responses validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from contract_testing import BUTTON, T0, C, H, topic

from hub import contract
from hub.contract import ContractError, Result

pytestmark = pytest.mark.timeout(60)


def parse(kind: str, body, hub: str = H) -> contract.Request:
    payload = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return contract.parse_request(topic(kind, hub), payload, county=C, hub_id=H)


def test_valid_requests():
    r = parse("ack", {"transaction": "op-1", "ref": "hub-0042:1a2b3c4d:118", "operator": "desk 3"})
    assert (r.kind, r.transaction, r.ref, r.operator) == (
        "ack",
        "op-1",
        "hub-0042:1a2b3c4d:118",
        "desk 3",
    )
    r = parse(
        "settings",
        {
            "transaction": 7,
            "device": "1a2b3c4d",
            "settings": {"quiet_end": 420, "heartbeat_interval": 60.0},
        },
    )
    assert r.device_id == 0x1A2B3C4D and r.settings == ((1, 60), (5, 420))
    assert (
        parse("settings", {"transaction": "h", "settings": {"fall_cancel_window": 30}}).device_id
        is None
    )
    assert (
        parse("identify", {"transaction": "i", "device": "0000beef", "future_field": [1]}).device_id
        == 0xBEEF
    )
    assert parse("test", {"transaction": "t", "device": "0000beef", "v": 1}).kind == "test"
    assert parse("list_devices", '{"transaction":"l"}') == contract.Request("list_devices", "l")


@pytest.mark.parametrize(
    "kind,payload,result",
    [
        ("ack", b"x" * 5000, Result.TOO_LONG),
        ("ack", b"\xff\xfe", Result.INVALID_FORMAT),
        ("ack", b"[1, 2]", Result.INVALID_FORMAT),
        ("ack", b'{"transaction": NaN, "ref": "hub-0042:1a2b3c4d:1"}', Result.INVALID_FORMAT),
        ("ack", b'{"transaction": 1e999}', Result.INVALID_FORMAT),
        ("ack", b"[" * 3000 + b"]" * 3000, Result.TOO_LONG),
        (
            "ack",
            b"[" * 2000 + b"]" * 2000,
            Result.INVALID_FORMAT,
        ),  # deep nesting: RecursionError, handled
        ("ack", b'{"ref": "hub-0042:1a2b3c4d:1"}', Result.MANDATORY_MISSING),
        ("ack", b'{"transaction": ""}', Result.INVALID_FORMAT),
        ("ack", b'{"transaction": true, "ref": "hub-0042:1a2b3c4d:1"}', Result.INVALID_FORMAT),
        ("ack", b'{"transaction": "a"}', Result.MANDATORY_MISSING),
        ("ack", b'{"transaction": "a", "ref": "hub-0043:1a2b3c4d:1"}', Result.WRONG_DATA),
        ("ack", b'{"transaction": "a", "ref": "nonsense"}', Result.WRONG_DATA),
        ("ack", b'{"transaction": "a", "ref": 5}', Result.INVALID_FORMAT),
        (
            "ack",
            b'{"transaction": "a", "ref": "hub-0042:1a2b3c4d:1", "operator": null}',
            Result.INVALID_FORMAT,
        ),
        ("ack", b'{"transaction": "a", "ref": "hub-0042:1a2b3c4d:1", "v": 2}', Result.NOT_TREATED),
        ("settings", b'{"transaction": "a"}', Result.MANDATORY_MISSING),
        ("settings", b'{"transaction": "a", "settings": {}}', Result.INVALID_FORMAT),
        ("settings", b'{"transaction": "a", "settings": {"volume": 3}}', Result.WRONG_DATA),
        ("settings", b'{"transaction": "a", "settings": {"quiet_end": 1440}}', Result.WRONG_DATA),
        # the devices clamp these (shared/frame.py): they would never be in force
        ("settings", b'{"transaction": "a", "settings": {"fall_cancel_window": 0}}',
         Result.WRONG_DATA),
        ("settings", b'{"transaction": "a", "settings": {"fall_cancel_window": 31}}',
         Result.WRONG_DATA),
        ("settings", b'{"transaction": "a", "settings": {"activity_interval": 241}}',
         Result.WRONG_DATA),
        (
            "settings",
            b'{"transaction": "a", "settings": {"quiet_end": "7"}}',
            Result.INVALID_FORMAT,
        ),
        (
            "settings",
            b'{"transaction": "a", "settings": {"quiet_end": 7.5}}',
            Result.INVALID_FORMAT,
        ),
        ("identify", b'{"transaction": "a"}', Result.MANDATORY_MISSING),
        ("identify", b'{"transaction": "a", "device": "00000000"}', Result.WRONG_DATA),
        ("test", b'{"transaction": "a", "device": 1}', Result.INVALID_FORMAT),
        ("reboot", b'{"transaction": "a"}', Result.NOT_TREATED),
    ],
)
def test_refused_requests(kind, payload, result, schemas):
    with pytest.raises(ContractError) as e:
        contract.parse_request(topic(kind), payload, county=C, hub_id=H)
    assert e.value.result == result, e.value
    answer = contract.error_response(H, C, e.value)
    schemas.check(f"response-{answer['kind']}", answer)
    if b'"transaction": "a"' in payload:
        assert answer["transaction"] == "a"  # echoed even in an error


def test_request_for_another_hub_or_topic():
    with pytest.raises(ContractError) as e:
        contract.parse_request(topic("ack", "hub-0043"), b'{"transaction":"a"}', county=C, hub_id=H)
    assert e.value.result == Result.WRONG_DATA
    for t in ["carebeacon/v1/x/hub/event", "carebeacon/v1/x/hub/request/ack/more", "other", ""]:
        with pytest.raises(ContractError) as e:
            contract.parse_request(t, b'{"transaction":"a"}')
        assert e.value.result in (Result.INVALID_FORMAT, Result.NOT_TREATED)


def test_responses_validate(schemas):
    for kind in contract.REQUEST_KINDS:
        schemas.check(
            f"response-{kind}",
            contract.response(hub=H, county=C, kind=kind, transaction="t", time=T0),
        )
    entry = contract.device_entry(BUTTON, None)
    listing = contract.response(
        hub=H, county=C, kind="list_devices", transaction=1, data={"devices": [entry]}
    )
    schemas.check("response-list_devices", listing)
    assert not schemas.is_valid(
        "response-list_devices", {**listing, "data": {"devices": [{"id": "x"}]}}
    )


def test_device_setting_bounds_are_the_devices_in_code_schema_and_docs(schemas):
    """One table (shared/frame.py SETTING_LO/HI, which the firmware clamps to) behind the
    contract's bounds, the request schema's and docs/mqtt.md's."""
    from shared import frame

    props = schemas.raw["request-settings"]["properties"]["settings"]["properties"]
    doc = (Path(__file__).resolve().parents[2] / "docs" / "mqtt.md").read_text()
    in_doc = {"heartbeat_interval": "`heartbeat_interval` (min, {}–{})",
              "activity_interval": "`activity_interval` (min, {}–{})",
              "fall_cancel_window": "`fall_cancel_window` (s, {}–{})",
              "quiet_start": "`quiet_start`, `quiet_end` (minutes after local midnight, {}–{})",
              "quiet_end": "`quiet_start`, `quiet_end` (minutes after local midnight, {}–{})"}
    assert set(in_doc) == set(contract.SETTINGS)
    for name, (sid, lo, hi) in contract.SETTINGS.items():
        assert (lo, hi) == (frame.SETTING_LO[sid], frame.SETTING_HI[sid]), name
        assert (props[name]["minimum"], props[name]["maximum"]) == (lo, hi), name
        assert in_doc[name].format(lo, hi) in doc, f"docs/mqtt.md: {name}"
