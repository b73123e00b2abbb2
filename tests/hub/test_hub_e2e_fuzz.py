"""End to end: every MQTT request handler of the real hub process, fuzzed through the broker.

A platform client publishes hypothesis-generated payloads (bounded examples) to each request
topic, one at a time; the hub must answer every one on its response topic with a schema-valid
message and a SCAIP result code (an error code for anything malformed), never crash, and still
take a real alarm afterwards.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/hub: the e2e helpers
from e2e_air import HUB  # noqa: E402
from e2e_home import Home  # noqa: E402

from hub.contract import MAX_REQUEST_BYTES, Result  # noqa: E402
from shared import frame as F  # noqa: E402

KINDS = ("ack", "settings", "identify", "test", "list_devices")
SETTING_NAMES = ("heartbeat_interval", "activity_interval", "fall_cancel_window", "quiet_start",
                 "quiet_end", "bogus")
EXAMPLES = 50  # payloads per request topic

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
_valid_tx = st.one_of(st.text(min_size=1, max_size=64), st.integers(0, 2**53 - 1))
transactions = st.one_of(_valid_tx, _valid_tx, _valid_tx, st.text(max_size=70),
                         st.integers(-5, 2**53 + 5), json_values)


GOOD = {  # kind -> (a well-formed request, the results the hub may give it)
    "ack": ({"transaction": "op-1", "ref": "REAL_REF", "operator": "desk 1"}, {"OK"}),
    "settings": ({"transaction": 7, "device": "0000c3d4", "settings": {"heartbeat_interval": 30}},
                 {"OK", "HOLD"}),
    "identify": ({"transaction": "i-1", "device": "0000a1b2"}, {"OK", "HOLD", "NOT_TREATED"}),
    "test": ({"transaction": "t-1", "device": "0000a1b2"}, {"OK"}),
    "list_devices": ({"transaction": 0}, {"OK"}),
    "bogus": ({"transaction": "b-1"}, {"NOT_TREATED"}),
}
REQUIRED = {"ack": ("ref",), "settings": ("settings",), "identify": ("device",),
            "test": ("device",)}


def requests(real_ref: str, kind: str):
    """Request payloads, mostly shaped like requests (so the handlers behind the parser are
    reached), the rest any JSON, any bytes, any text, empty or over the size limit."""
    refs = st.one_of(
        st.just(real_ref), st.text(max_size=40), json_values,
        st.builds(lambda h, d, s: f"{h}:{d:08x}:{s}", st.sampled_from([HUB, "hub-b", "x"]),
                  st.sampled_from([0xA1B2, 0, 0x1234, 0xFFFFFFFF]), st.integers(-1, 2**33)))
    devices = st.one_of(st.sampled_from(["0000a1b2", "0000c3d4", "ffffffff", "00000000"]),
                        st.text(max_size=10), json_values)
    values = st.one_of(st.integers(-10, 5000), st.text(max_size=4), json_values)
    settings_ = st.one_of(st.dictionaries(st.sampled_from(SETTING_NAMES), values, max_size=5),
                          json_values)
    fields = {"ref": refs, "device": devices, "settings": settings_,
              "operator": st.one_of(st.text(max_size=80), json_values),
              "v": st.sampled_from([1, 2, "1", None, 1.0])}
    need = REQUIRED.get(kind, ())
    shaped = st.fixed_dictionaries({"transaction": transactions, **{k: fields[k] for k in need}},
                                   optional={k: v for k, v in fields.items() if k not in need})
    loose = st.fixed_dictionaries({}, optional={"transaction": transactions, **fields})
    as_json = st.one_of(shaped, shaped, shaped, shaped, loose, json_values)
    return st.one_of(
        as_json.map(json.dumps).map(str.encode),
        as_json.map(json.dumps).map(str.encode),
        st.binary(max_size=120) | st.text(max_size=60).map(str.encode),
        st.sampled_from([b"", b"{" + b" " * MAX_REQUEST_BYTES + b"}"]),
    )


def _refuse(name: str):
    raise ValueError(name)


def expected_transaction(payload: bytes):
    """What the contract says the hub echoes (docs/mqtt.md): the request's transaction if it
    is 1-64 characters or an integer 0..2**53-1, else null."""
    if len(payload) > MAX_REQUEST_BYTES:
        return None
    try:
        body = json.loads(payload.decode("utf-8"), parse_constant=_refuse)
    except (ValueError, RecursionError):
        return None
    t = body.get("transaction") if isinstance(body, dict) else None
    if isinstance(t, str):
        return t if 1 <= len(t) <= 64 else None
    if isinstance(t, float) and t.is_integer():
        t = int(t)
    return t if isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**53 else None


@pytest.fixture
def home(broker, tmp_path):
    h = Home(broker, tmp_path)
    yield h
    h.close()


@pytest.mark.heavy  # > 10 s: `-m 'not heavy'` skips it
@pytest.mark.timeout(150)
def test_fuzzed_requests_are_all_answered_and_the_hub_survives(home, schemas):
    button = home.dev[0xA1B2]
    seq = button.send(F.T_SOS, target=F.ACK_DELIVERED)
    button.wait_status(seq, F.ACK_DELIVERED)
    real_ref = button.ref(seq)
    results: dict[str, dict[str, int]] = {}

    def check(kind: str, payload: bytes, resp: dict) -> None:
        topic_kind = resp.pop("_kind")
        assert topic_kind == (kind if kind in KINDS else "error")
        schemas.check(f"response-{topic_kind}", resp)
        assert resp["kind"] == topic_kind and resp["hub"] == HUB
        result = Result(resp["result"])  # a SCAIP result code, nothing else
        tally = results.setdefault(kind, {})
        tally[result.name] = tally.get(result.name, 0) + 1
        assert resp["transaction"] == expected_transaction(payload)
        try:
            body = json.loads(payload.decode("utf-8"))
        except ValueError:
            body = None
        if len(payload) > MAX_REQUEST_BYTES:
            assert result == Result.TOO_LONG
        elif not isinstance(body, dict) or kind not in KINDS:
            assert result != Result.OK  # malformed or unknown: an error code
        elif "transaction" not in body:
            assert result == Result.MANDATORY_MISSING

    def fuzz(kind: str) -> None:
        # One request at a time: the hub answers malformed requests as they arrive and the
        # rest in a later turn of its event loop, so answers to back-to-back requests may be
        # reordered (the contract matches them by transaction, which a fuzzed request may lack).
        good, want = GOOD[kind]
        good = json.dumps(good).replace("REAL_REF", real_ref).encode()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(payload=requests(real_ref, kind))
        @example(payload=good)  # a well-formed request: its handler really runs
        def run(payload: bytes) -> None:
            resp = home.platform.request_and_wait(kind, payload, hub=HUB)
            check(kind, payload, resp)
            if payload == good:
                assert Result(resp["result"]).name in want, resp
            assert home.hub.alive, home.hub.log_tail()
        run()

    for kind in (*KINDS, "bogus"):  # every handler gets the whole budget
        fuzz(kind)
    print(results)
    assert home.hub.alive and home.platform.bad == []
    assert all(sum(t.values()) >= EXAMPLES for t in results.values())
    assert "OK" in results["list_devices"] and "NOT_TREATED" in results["bogus"]
    # ...and the hub still does its job: a new alarm is stored, published and acknowledged
    seq2 = button.send(F.T_SOS, target=F.ACK_DELIVERED)
    button.wait_status(seq2, F.ACK_DELIVERED)
    assert home.platform.wait_event(button.ref(seq2))["type"] == "manual_alarm"
