"""hub/contract.py request parsing, fuzzed: never crashes, every schema-valid request parses."""

from __future__ import annotations

import json

import pytest
from contract_testing import C, H, topic
from hypothesis import HealthCheck, given, settings, strategies as st

from hub import contract
from hub.contract import ContractError, Result

pytestmark = pytest.mark.timeout(60)


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
            {}, optional={n: st.none() | st.integers(lo, hi)  # None: clear the platform's
                          for n, (_, lo, hi) in contract.SETTINGS.items()}
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
