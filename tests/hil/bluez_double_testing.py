"""Helpers for the tests of bleak's real BlueZ backend against hil.sim.bluez.BlueZDouble on a
private dbus-daemon (test_bluez_double_*.py).

No mocks of bleak: BleakScanner / BleakClient run their D-Bus code unchanged;
only the system bus address (DBUS_SYSTEM_BUS_ADDRESS, read by dbus-fast on
every connect) points at a private daemon where the double owns org.bluez.
Each test runs in a fresh event loop (asyncio.run), because bleak keeps one
BlueZ manager (and one D-Bus connection) per event loop.

Signal-order barrier: signals from the double reach bleak's one connection in
order, so "an advert did NOT arrive" is checked by sending a changed advert
from a marker device afterwards and waiting for that one.
"""

from __future__ import annotations

import asyncio

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from hil.sim.bluez import BlueZDouble
from shared.frame import COMPANY_ID

BUTTON = "C8:2E:18:00:00:01"
MARKER = "C8:2E:18:00:00:FF"


def frame(n: int) -> bytes:
    """A stand-in 24-byte device frame; n makes each retransmission differ."""
    return bytes([0x10]) + n.to_bytes(4, "big") + bytes(19)


class Detections:
    """A BleakScanner detection_callback that tests can await."""

    def __init__(self) -> None:
        self.items: list[tuple[BLEDevice, AdvertisementData]] = []
        self._changed = asyncio.Event()
        self._marks = 0

    def __call__(self, device: BLEDevice, adv: AdvertisementData) -> None:
        self.items.append((device, adv))
        self._changed.set()

    async def wait(self, count: int, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()

    async def barrier(self, bz: BlueZDouble) -> None:
        """Wait until everything the double emitted so far has reached bleak."""
        self._marks += 1
        assert await bz.advertise(MARKER, {COMPANY_ID: self._marks.to_bytes(4, "big")})
        async with asyncio.timeout(2):
            while not any(
                d.address == MARKER
                and a.manufacturer_data.get(COMPANY_ID) == self._marks.to_bytes(4, "big")
                for d, a in self.items
            ):
                self._changed.clear()
                await self._changed.wait()

    def of(self, address: str) -> list[AdvertisementData]:
        return [a for d, a in self.items if d.address == address]
