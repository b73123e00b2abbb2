"""hub/contract.py identifiers: the topic tree, ids as single safe topic levels, refs, UTC times
with milliseconds."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from contract_testing import T0, C, H
from hypothesis import given, strategies as st

from hub import contract

pytestmark = pytest.mark.timeout(60)


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
