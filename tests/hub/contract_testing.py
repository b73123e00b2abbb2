"""Helpers for the contract tests (test_contract_*.py): a county, a hub, a time, a device, refs
and request topics for them."""

from __future__ import annotations

import datetime as dt

from hub import contract
from hub.contract import Device

C, H = "cn-330106", "hub-0042"
T0 = dt.datetime(2025, 3, 1, 8, 15, 30, 250000, tzinfo=dt.UTC)
BUTTON = Device(0x1A2B3C4D, "button", "bedside, left", "bedroom")


def ref(seq: int, device: Device | None = BUTTON) -> str:
    return contract.make_ref(H, device.id if device else None, seq)


def topic(kind: str, hub: str = H) -> str:
    return contract.request_topic(C, hub, kind)
