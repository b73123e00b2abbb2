"""Helpers for the radio tests (test_radio_*.py): hub.radio against bleak's real BlueZ backend
and hil.sim.bluez.BlueZDouble.

As in tests/hil/test_bluez_double_*.py: a private dbus-daemon per test, the double owning
org.bluez on it, DBUS_SYSTEM_BUS_ADDRESS pointing bleak (and the radio's own D-Bus line) at it,
and a fresh event loop per test (bleak keeps one D-Bus connection per loop). Thresholds and
retry waits are shrunk (FastRadio) so that silence, restarts and resets happen in about a second.
The `logs` fixture is in conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bluez_testing import eventually
from hil.sim.bluez import BlueZDouble
from hub.radio import Radio, RadioHealth
from shared.frame import ACK_LEN, COMPANY_ID, T_SOS, Codec

BUTTON = "C8:2E:18:00:00:01"
PIR = "C8:2E:18:00:00:02"
MARKER = "C8:2E:18:00:00:FF"
ACK = bytes([0x11]) + bytes(range(1, 20))


CODEC = Codec(0x0000_0001, bytes(range(16)))


def ack(seq: int, status: int, clock: int = 0, setting: int = 0, value: int = 0,
        mtype: int = T_SOS) -> bytes:
    """A real sealed acknowledgement (``clock`` makes two of one status differ) of frame `seq`
    of type `mtype` (under the tag only: the radio never looks at it)."""
    return bytes(CODEC.encode_ack(bytearray(ACK_LEN), seq, mtype, status, clock, setting, value))


def frame(n: int, device: int = 1) -> bytes:
    """A stand-in 24-byte device frame from ``device`` (the id the radio groups addresses by);
    n makes each transmission differ (BlueZ drops repeats)."""
    return bytes([0x10]) + device.to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(15)


def device_of(address: str) -> int:
    """The device id advertise_until_heard claims for ``address``: its last two bytes (BUTTON
    1, PIR 2), so that each address of a test is a device of its own."""
    return int(address[-5:].replace(":", ""), 16) or 0x10000


class FastRadio(Radio):
    """Radio with waits shrunk for tests; behaviour otherwise unchanged."""

    op_timeout_s = 2.0
    cancel_grace_s = 0.5
    start_retry_s = 0.05
    power_off_s = 0.05
    adapter_poll_s = 0.1
    error_retry_s = (0.1, 0.5)
    ack_backoff_s = {
        "timeout": (0.3, 1.0),
        "connect_failed": (0.1, 0.5),
        "busy": (0.1, 0.5),
        "write_failed": (0.1, 0.5),
    }


def warnings(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


class Heard:
    """on_advert sink."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes, int | None]] = []

    def __call__(self, address: str, payload: bytes, rssi: int | None) -> None:
        self.items.append((address, payload, rssi))

    def has(self, address: str, payload: bytes) -> bool:
        return any(a == address and p == payload for a, p, _ in self.items)


class Healths:
    """on_health sink."""

    def __init__(self) -> None:
        self.items: list[RadioHealth] = []

    def __call__(self, health: RadioHealth) -> None:
        self.items.append(health)

    @property
    def states(self) -> list[str]:
        return [h.state for h in self.items]

    async def reach(self, *states: str, timeout: float = 3.0) -> None:
        """Wait until ``states`` have been published in this order (others may come between)."""

        def seen() -> bool:
            it = iter(self.states)
            return all(s in it for s in states)

        await eventually(seen, timeout)


async def advertise_until_heard(bz: BlueZDouble, heard: Heard, address: str, start: int) -> int:
    """A device retransmitting (each advert differs) until the radio hears it; returns the n."""
    n = start
    async with asyncio.timeout(3):
        while True:
            await bz.advertise(address, {COMPANY_ID: frame(n, device_of(address))})
            for _ in range(5):
                if heard.has(address, frame(n, device_of(address))):
                    return n
                await asyncio.sleep(0.01)
            n += 1


def radio_for(heard: Heard, healths: Healths | None = None, **kw: Any) -> FastRadio:
    kw.setdefault("silence_restart_s", 30)
    kw.setdefault("silence_reset_s", 60)
    return FastRadio(on_advert=heard, on_health=healths, **kw)


@contextlib.asynccontextmanager
async def radio_hearing(bz: BlueZDouble, *addresses: str, **kw: Any) -> AsyncIterator[FastRadio]:
    """A started radio (``radio_for(Heard(), **kw)``) that has heard each of ``addresses``;
    stopped on leaving, however the body ends."""
    heard = Heard()
    radio = radio_for(heard, **kw)
    await radio.start()
    try:
        for address in addresses:
            await advertise_until_heard(bz, heard, address, 1)
        yield radio
    finally:
        await radio.stop()
