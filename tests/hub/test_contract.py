"""hub/contract.py without a broker: topics, refs, builders vs the JSON Schemas, request parsing
(fuzzed),
and the AsyncAPI document vs the code and the schema files."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from hub import contract
from hub.contract import ContractError, Device, Result

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "mqtt"
C, H = "cn-330106", "hub-0042"
T0 = dt.datetime(2025, 3, 1, 8, 15, 30, 250000, tzinfo=dt.UTC)
BUTTON = Device(0x1A2B3C4D, "button", "bedside, left", "bedroom")
BRACELET = Device(0x0000BEEF, "bracelet", "worn", "")
PIR = Device(0x00C0FFEE, "pir", "hall ceiling", "hall")


def ref(seq: int, device: Device | None = BUTTON) -> str:
    return contract.make_ref(H, device.id if device else None, seq)


# ----- topics and identifiers -------------------------------------------------------------------
def test_topic_tree():
    assert contract.event_topic(C, H) == "carebeacon/v1/cn-330106/hub-0042/event"
    assert contract.state_topic(C, H) == "carebeacon/v1/cn-330106/hub-0042/state"
    assert (
        contract.availability_topic(C, H, 0xBEEF)
        == "carebeacon/v1/cn-330106/hub-0042/device/0000beef/availability"
    )
    assert contract.request_filter(C, H) == "carebeacon/v1/cn-330106/hub-0042/request/+"
    assert contract.response_topic(C, H, "ack") == "carebeacon/v1/cn-330106/hub-0042/response/ack"
    assert contract.response_topic(C, H, None).endswith("/response/error")
    assert contract.response_topic(C, H, "../x").endswith("/response/error")


@pytest.mark.parametrize(
    "bad", ["", "Hub", "a/b", "a+", "#", "$sys", "-a", "a" * 65, "a b", None, 7]
)
def test_ids_are_single_safe_topic_levels(bad):
    with pytest.raises(ValueError):
        contract.event_topic(C, bad)


@given(
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True),
    st.one_of(st.none(), st.integers(1, 2**32 - 1)),
    st.integers(1, 2**32 - 1),
)
def test_ref_round_trip(hub, device, seq):
    r = contract.make_ref(hub, device, seq)
    assert contract.parse_ref(r) == (hub, device, seq)
    assert re.fullmatch(r"[a-z0-9_-]+:[0-9a-f]{8}:[0-9]+", r)


@pytest.mark.parametrize(
    "bad",
    [
        "hub:1a2b3c4d:0",
        "hub:1A2B3C4D:1",
        "hub:1a2b3c4:1",
        "hub:1a2b3c4d:4294967296",
        "hub:1a2b3c4d:01",
        ":1a2b3c4d:1",
        "hub:1a2b3c4d",
        5,
        None,
    ],
)
def test_bad_refs(bad):
    with pytest.raises(ValueError):
        contract.parse_ref(bad)


def test_times_are_utc_with_milliseconds():
    assert contract.iso_time(T0) == "2025-03-01T08:15:30.250Z"
    tz8 = dt.timezone(dt.timedelta(hours=8))
    assert contract.iso_time(T0.astimezone(tz8)) == "2025-03-01T08:15:30.250Z"
    assert contract.iso_time(0) == "1970-01-01T00:00:00.000Z"
    with pytest.raises(ValueError):
        contract.iso_time(dt.datetime(2025, 1, 1))  # naive


# ----- events -----------------------------------------------------------------------------------
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


# ----- requests ---------------------------------------------------------------------------------
def topic(kind: str, hub: str = H) -> str:
    return contract.request_topic(C, hub, kind)


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


def check_outcome(t, payload, schemas):
    """Never crash: a Request whose payload the kind's schema accepts, or a ContractError whose
    answer
    validates."""
    try:
        r = contract.parse_request(t, payload, county=C, hub_id=H)
    except ContractError as e:
        assert e.result != Result.OK
        answer = contract.error_response(H, C, e)
        schemas.check(f"response-{answer['kind']}", answer)
        return None
    assert r.kind in contract.REQUEST_KINDS
    body = json.loads(payload)
    schemas.check(f"request-{r.kind}", body)
    return r


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=12,
)
kinds = st.sampled_from([*contract.REQUEST_KINDS, "reboot", "", "+"])
topics = st.one_of(
    st.text(max_size=60),
    kinds.map(topic),
    kinds.map(topic),
    kinds.map(lambda k: topic(k, "hub-0043")),
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "transaction": st.one_of(st.text(max_size=70), st.integers(-5, 2**54), json_values),
        "ref": st.one_of(st.just("hub-0042:1a2b3c4d:118"), st.text(max_size=30), json_values),
        "device": st.one_of(
            st.just("1a2b3c4d"), st.just("00000000"), st.text(max_size=10), json_values
        ),
        "operator": st.one_of(st.text(max_size=70), json_values),
        "v": st.one_of(st.just(1), json_values),
        "settings": st.one_of(
            st.dictionaries(
                st.sampled_from([*contract.SETTINGS, "volume"]),
                st.one_of(st.integers(-10, 2000), json_values),
                max_size=5,
            ),
            json_values,
        ),
    },
)
valid = st.one_of(
    st.builds(
        lambda t, r, o: (
            "ack",
            {"transaction": t, "ref": r, **({"operator": o} if o is not None else {})},
        ),
        st.text(min_size=1, max_size=64),
        st.integers(1, 2**32 - 1).map(lambda s: f"{H}:1a2b3c4d:{s}"),
        st.none() | st.text(max_size=64),
    ),
    st.builds(
        lambda t, d, s: (
            "settings",
            {"transaction": t, **({"device": d} if d else {}), "settings": s},
        ),
        st.integers(0, 2**53 - 1),
        st.none() | st.integers(1, 2**32 - 1).map("{:08x}".format),
        st.fixed_dictionaries(
            {}, optional={n: st.integers(lo, hi) for n, (_, lo, hi) in contract.SETTINGS.items()}
        ).filter(bool),
    ),
    st.builds(
        lambda k, d: (k, {"transaction": "x", "device": d}),
        st.sampled_from(["identify", "test"]),
        st.integers(1, 2**32 - 1).map("{:08x}".format),
    ),
)


def mutate(kind_body, key, value):
    _, body = kind_body
    return json.dumps({**body, key: value})


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(json.dumps),
    fields.map(json.dumps),
    valid.map(lambda kb: json.dumps(kb[1])),  # well-formed bodies, often on the wrong kind's topic
    st.builds(
        mutate,
        valid,
        st.sampled_from(["transaction", "ref", "device", "settings", "operator", "v"]),
        json_values,
    ),  # one field broken
    st.integers(4000, 5000).map(
        lambda n: json.dumps({"transaction": "t", "pad": "x" * n})
    ),  # around the limit
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=topics, payload=payloads)
def test_fuzz_parse_request_never_crashes(t, payload, schemas):
    check_outcome(t, payload, schemas)


@settings(max_examples=300, deadline=None)
@given(kind_body=valid)
def test_every_schema_valid_request_parses(kind_body, schemas):
    kind, body = kind_body
    schemas.check(f"request-{kind}", body)
    r = check_outcome(topic(kind), json.dumps(body), schemas)
    assert r is not None and r.kind == kind and r.transaction == body["transaction"]


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


# ----- the documents ----------------------------------------------------------------------------
def test_schema_examples_validate(schemas):
    for name, schema in schemas.raw.items():
        for example in schema.get("examples", []):
            schemas.check(name, example)


def test_asyncapi_matches_code_and_schemas():
    doc = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.0")
    refs = set(re.findall(r"\./schemas/([\w-]+\.json)", (DOCS / "asyncapi.yaml").read_text()))
    on_disk = {p.name for p in (DOCS / "schemas").glob("*.json")} - {"common.json"}
    assert refs == on_disk
    addresses = {ch["address"] for ch in doc["channels"].values()}
    fmt = {"county": C, "hubId": H, "deviceId": "0000beef"}
    expected = {
        contract.event_topic(C, H),
        contract.state_topic(C, H),
        contract.availability_topic(C, H, 0xBEEF),
    }
    expected |= {contract.request_topic(C, H, k) for k in contract.REQUEST_KINDS}
    expected |= {contract.response_topic(C, H, k) for k in (*contract.REQUEST_KINDS, None)}
    assert {a.format(**fmt) for a in addresses} == expected
    for name, op in doc[
        "operations"
    ].items():  # every operation points at a channel and its messages
        channel = op["channel"]["$ref"].split("/")[-1]
        assert channel in doc["channels"], name
        for m in op.get("messages", []):
            assert m["$ref"].startswith(f"#/channels/{channel}/messages/"), name
    for ch in doc["channels"].values():
        for m in ch["messages"].values():
            target = m["$ref"].split("/")[-1]
            assert target in doc["components"]["messages"]


def test_doc_examples_validate(schemas):
    """Every ```json block in docs/mqtt.md preceded by <!-- schema: NAME --> validates."""
    text = (REPO / "docs" / "mqtt.md").read_text()
    blocks = re.findall(r"<!-- schema: ([\w-]+) -->\s*```json\n(.*?)```", text, re.S)
    assert len(blocks) >= 8
    for name, body in blocks:
        schemas.check(name, json.loads(body))
