"""Scanning with bleak against the BlueZ double: adverts arrive with manufacturer data and RSSI,
raw firmware adverts are parsed like BlueZ, identical repeats are filtered."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakScanner
from bluez_double_testing import BUTTON, Detections, frame

from hil.sim.bluez import BlueZDouble
from shared.frame import COMPANY_ID, build_adv

pytestmark = pytest.mark.timeout(20)


def test_advert_arrives_with_manufacturer_data_and_rssi(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        assert not await bz.advertise(BUTTON, {COMPANY_ID: frame(0)})  # nobody is scanning
        seen = Detections()
        async with BleakScanner(seen, scanning_mode="active"):
            assert bz.discovering and bz.calls["StartDiscovery"] == 1
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(1)}, rssi=-67)
            await seen.wait(1)
        device, adv = seen.items[0]
        assert device.address == BUTTON and device.name is None and adv.local_name is None
        assert adv.manufacturer_data == {COMPANY_ID: frame(1)} and adv.rssi == -67
        assert device.details["path"] == "/org/bluez/hci0/dev_C8_2E_18_00_00_01"
        assert not bz.discovering and bz.calls["StopDiscovery"] == 1
        assert not await bz.advertise(BUTTON, {COMPANY_ID: frame(2)})  # scanner stopped

    run(body)


def test_raw_firmware_advert_is_parsed_like_bluez(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        seen = Detections()
        async with BleakScanner(seen):
            assert await bz.advertise_raw(BUTTON, build_adv(bytearray(31), frame(7)), rssi=-48)
            await seen.wait(1)
        (adv,) = seen.of(BUTTON)
        assert adv.manufacturer_data == {COMPANY_ID: frame(7)} and adv.rssi == -48
        assert adv.platform_data[1]["AdvertisingFlags"] == b"\x06"

    run(body)


def test_identical_repeat_is_filtered_changed_advert_arrives(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        seen = Detections()
        async with BleakScanner(seen):
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(1)}, rssi=-60)
            assert not await bz.advertise(BUTTON, {COMPANY_ID: frame(1)}, rssi=-70)  # same data
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(2)}, rssi=-61)  # retransmission
            await seen.barrier(bz)
            got = seen.of(BUTTON)
            assert [a.manufacturer_data[COMPANY_ID] for a in got] == [frame(1), frame(2)]
            assert [a.rssi for a in got] == [-60, -61]
            assert bz.adverts["dropped_duplicate"] == 1
            await asyncio.sleep(0.25)  # the next scan cycle: the controller reports it once more
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(2)}, rssi=-62)
            assert not await bz.advertise(BUTTON, {COMPANY_ID: frame(2)}, rssi=-62)
            await seen.barrier(bz)
            assert [a.rssi for a in seen.of(BUTTON)] == [-60, -61, -62]

    run(body, scan_cycle_s=0.2)
