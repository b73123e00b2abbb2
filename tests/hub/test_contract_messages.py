"""hub/contract.py messages the hub sends: every event type, state, will and availability built
and validated against the JSON Schemas; inconsistent events refused."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from contract_testing import BUTTON, T0, C, H, ref

from hub import contract
from hub.contract import Device

pytestmark = pytest.mark.timeout(60)
BRACELET = Device(0x0000BEEF, "bracelet", "worn", "")
PIR = Device(0x00C0FFEE, "pir", "hall ceiling", "hall")


def all_events() -> list[dict]:
    ev = dict(
        hub=H,
        county=C,
        household="hh-2291",
        event_time=T0 - dt.timedelta(seconds=0.4),
        receive_time=T0,
    )
    return [
        contract.build_event(
            ref=ref(1), type="manual_alarm", device=BUTTON, battery=87, rssi=-71, **ev
        ),
        contract.build_event(ref=ref(2), type="cancel", device=BUTTON, cancels=ref(1), **ev),
        contract.build_event(ref=ref(3), type="test", device=BUTTON, **ev),
        contract.build_event(ref=ref(4), type="test", device=BUTTON, cancels=ref(1), **ev),
        contract.build_event(
            ref=ref(9, BRACELET),
            type="automatic_alarm",
            cause="fall_suspected",
            device=BRACELET,
            **ev,
        ),
        contract.build_event(
            ref=ref(10, BRACELET),
            type="automatic_alarm",
            cause="fall",
            device=BRACELET,
            priority=0,
            **ev,
        ),
        contract.build_event(
            ref=ref(11, BRACELET), type="cancel", device=BRACELET, cancels=ref(9, BRACELET), **ev
        ),
        contract.build_event(ref=ref(5, None), type="automatic_alarm", cause="inactivity", **ev),
        contract.build_event(
            ref=ref(12, BRACELET), type="battery_low", device=BRACELET, battery=9, **ev
        ),
        contract.build_event(ref=ref(6, None), type="supervision_missing", device=None, **ev),
        contract.build_event(ref=ref(7, None), type="supervision_restored", **ev),
        contract.build_event(
            ref=ref(20, PIR), type="fault", device=PIR, fault={"code": 2, "detail": 0}, **ev
        ),
        contract.build_event(
            ref=ref(21, PIR), type="restoral", device=PIR, fault={"code": 2}, **ev
        ),
        contract.build_event(
            ref=ref(8, None), type="fault", fault={"code": 201, "text": "hci0 gone"}, **ev
        ),
        contract.build_event(
            ref=ref(22, PIR),
            type="information",
            device=PIR,
            info={"kind": "activity", "motion_count": 14, "interval_min": 15},
            **ev,
        ),
        contract.build_event(
            ref=ref(23, PIR),
            type="information",
            device=PIR,
            info={"kind": "door", "door": "opened"},
            **ev,
        ),
        contract.build_event(
            ref=ref(13, BRACELET), type="heartbeat", device=BRACELET, battery=77, rssi=-80, **ev
        ),
    ]


def test_every_event_type_builds_and_validates(schemas):
    events = all_events()
    assert {e["type"] for e in events} == set(contract.EVENT_TYPES)
    for e in events:
        schemas.check("event", e)
        assert json.loads(contract.encode(e)) == e
        code, text, mtype, _ = contract.EVENT_TYPES[e["type"]]
        assert e["scaip"]["status_code"] == code and e["scaip"]["message_type"] == mtype
        assert (
            e["scaip"]["code_system"] == "carebeacon"
        )  # our codes, never passed off as SCAIP's numbers
        assert contract.parse_ref(e["ref"])[2] == e["seq"]
    by_ref = {e["ref"]: e for e in events}
    assert by_ref[ref(1)]["scaip"]["device_type"] == "personal trigger"
    assert by_ref[ref(10, BRACELET)]["scaip"]["device_type"] == "fall detector"
    assert (
        by_ref[ref(5, None)]["scaip"]["device_type"] == "activity detector"
        and "device" not in by_ref[ref(5, None)]
    )
    assert by_ref[ref(20, PIR)]["fault"]["name"] == "pir_stuck_high"


def test_status_codes_and_texts_are_unique_and_in_the_schema(schemas):
    codes = [v[0] for v in contract.EVENT_TYPES.values()]
    texts = [v[1] for v in contract.EVENT_TYPES.values()]
    assert len(set(codes)) == len(codes) and len(set(texts)) == len(texts)
    scaip = schemas.raw["event"]["properties"]["scaip"]["properties"]
    assert scaip["status_code"]["enum"] == codes and scaip["status_text"]["enum"] == texts
    assert schemas.raw["event"]["properties"]["type"]["enum"] == list(contract.EVENT_TYPES)


@pytest.mark.parametrize(
    "kw",
    [
        dict(type="manual_alarm", cause="fall"),  # cause only on automatic alarms
        dict(type="automatic_alarm"),  # ... and required there
        dict(type="cancel"),  # a cancel must say what it cancels
        dict(type="manual_alarm", cancels="hub-0042:1a2b3c4d:1"),
        dict(type="cancel", cancels="hub-9:1a2b3c4d:1"),  # another hub's alarm
        dict(type="fault"),
        dict(type="information", info={"kind": "sleep"}),
        dict(type="manual_alarm", priority=10),
        dict(type="manual_alarm", battery=101),
        dict(type="manual_alarm", ref="hub-0042:0000beef:1"),  # ref names another device
        dict(type="manual_alarm", ref="hub-9:1a2b3c4d:1"),  # ref names another hub
        dict(type="manual_alarm", household="a/b"),
        dict(type="panic"),
    ],
)
def test_builder_refuses_inconsistent_events(kw):
    args = dict(
        ref=ref(100),
        hub=H,
        county=C,
        household="hh-1",
        device=BUTTON,
        event_time=T0,
        receive_time=T0,
    )
    args.update(kw)
    with pytest.raises(ValueError):
        contract.build_event(**args)


def test_schema_enforces_the_type_rules(schemas):
    e = all_events()[0]
    assert not schemas.is_valid("event", {**e, "cause": "fall"})
    assert not schemas.is_valid("event", {**e, "type": "cancel"})
    assert not schemas.is_valid("event", {**e, "fault": {"code": 1, "name": "x"}})
    assert not schemas.is_valid("event", {**e, "event_time": "2025-03-01T08:15:30Z"})  # ms required
    assert not schemas.is_valid("event", {**e, "extra": 1})


def test_state_will_and_availability(schemas):
    online = contract.build_state(
        hub=H, county=C, online=True, reason="connected", radio="ok", software="hub 0.1"
    )
    will = contract.build_state(hub=H, county=C, online=False, reason="connection_lost")
    degraded = contract.build_state(
        hub=H,
        county=C,
        online=True,
        reason="update",
        radio="degraded",
        radio_detail="3 adapter resets in 10 min",
        time=T0,
    )
    for m in (online, will, degraded):
        schemas.check("state", m)
    assert will["radio"] == {"status": "unknown"} and will["state"] == "offline"
    a = contract.build_availability(
        hub=H, county=C, device_id=0xBEEF, online=False, time=T0, last_seen=T0
    )
    schemas.check("availability", a)
    assert a["device"] == "0000beef"
