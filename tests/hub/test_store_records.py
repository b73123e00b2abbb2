"""What the store takes as a record: fields validated naming the field, the hub's own events
(device 0), which frame types are alarms."""

from __future__ import annotations

import pytest
from store_testing import T0, rec

from hub import events
from hub.store import Record, Store
from hub.store_types import HUB_SELF
from shared.frame import T_SOS, is_alarm


def test_records_are_validated_naming_the_field(store: Store):
    with pytest.raises(ValueError, match="device_id"):
        rec(-1, 1)
    with pytest.raises(ValueError, match="seq"):
        rec(1, 2**32)
    with pytest.raises(ValueError, match="mtype"):
        rec(1, 1, mtype=99)
    with pytest.raises(ValueError, match="payload_json"):
        Record(1, 1, T_SOS, 0, T0, T0, b"{}")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fields: colour"):
        store.add(
            {
                "device_id": 1,
                "seq": 1,
                "mtype": 1,
                "arg": 0,
                "event_ms": 1,
                "recv_ms": 1,
                "payload_json": "{}",
                "colour": "red",
            }
        )
    a = store.add(
        {
            "device_id": 1,
            "seq": 1,
            "mtype": 1,
            "arg": 0,
            "event_ms": 1,
            "recv_ms": 1,
            "payload_json": "{}",
        }
    )
    assert a.is_new and store.get(a.ref).alarm  # type: ignore[union-attr]
    assert rec(1, 1, T_SOS, recv_ms=-5).recv_ms == -5  # a wrong clock never refuses an alarm


def test_events_the_hub_raises_itself(store: Store):
    """device_id 0 (HUB_SELF): the hub's own types from hub/events.py, arg up to a device id."""

    def hub_rec(seq: int, mtype: int, arg: int = 0) -> Record:
        return Record(HUB_SELF, seq, mtype, arg, T0, T0, "{}")

    inactivity = store.add(hub_rec(1, events.H_INACTIVITY_ALARM))
    fault = store.add(hub_rec(2, events.H_FAULT, arg=0xFFFFFFFF))
    assert inactivity.ref == "hub-7:00000000:1"
    assert store.get(inactivity.ref).alarm is True  # type: ignore[union-attr]
    assert store.get(fault.ref).alarm is False  # type: ignore[union-attr]
    assert all(hub_rec(1, t).alarm for t in events.HUB_ALARM_TYPES)
    with pytest.raises(ValueError, match="mtype"):
        hub_rec(3, T_SOS)  # radio types are for devices
    with pytest.raises(ValueError, match="mtype"):
        rec(5, 1, mtype=events.H_FAULT)  # and hub types for the hub
    with pytest.raises(ValueError, match="arg"):
        Record(5, 1, T_SOS, 0x1000000, T0, T0, "{}")


def test_alarm_types_match_the_protocol():
    assert [t for t in range(1, 15) if is_alarm(t)] == [1, 2, 3, 4, 5, 6]
