"""Connections and acknowledgement writes with bleak against the BlueZ double: writes reach the
device, failures and hangs surface, connection changes look like adverts, devices expire."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakDBusError, BleakError, BleakGATTProtocolError
from bluez_double_testing import BUTTON, Detections, frame

from bluez_testing import eventually
from hil.sim.bluez import AttError, BlueZDouble
from hil.sim.bluez_gatt import ACK_CHARACTERISTIC_UUID, CAREBEACON_SERVICE_UUID
from shared.frame import COMPANY_ID

pytestmark = pytest.mark.timeout(20)


async def scan_and_find(bz: BlueZDouble, address: str = BUTTON) -> BLEDevice:
    """Scan until the double's device shows up; return bleak's BLEDevice for it."""
    seen = Detections()
    async with BleakScanner(seen) as scanner:
        await bz.advertise(address, {COMPANY_ID: frame(1)})
        await seen.wait(1)
        return next(d for d in scanner.discovered_devices if d.address == address)


def test_client_connects_and_ack_write_reaches_the_device(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        device = await scan_and_find(bz)
        ack = bytes([0x11]) + bytes(range(1, 20))
        async with BleakClient(device, timeout=5) as client:
            assert bz.is_connected(BUTTON)
            char = client.services.get_characteristic(ACK_CHARACTERISTIC_UUID)
            assert char is not None and char.properties == ["write"]
            assert char.service_uuid == CAREBEACON_SERVICE_UUID
            await client.write_gatt_char(ACK_CHARACTERISTIC_UUID, ack)  # response chosen: "write"
        assert got == [ack] and bz.writes[0].type == "request"
        assert not bz.is_connected(BUTTON)
        assert bz.calls["Connect"] == 1 and bz.calls["Disconnect"] == 1

    run(body)


def test_failed_ack_write_surfaces_as_gatt_protocol_error(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        def refuse(data: bytes) -> None:
            raise AttError(0x0E)

        bz.on_write(BUTTON, refuse)
        device = await scan_and_find(bz)
        async with BleakClient(device) as client:
            with pytest.raises(BleakGATTProtocolError) as err:
                await client.write_gatt_char(ACK_CHARACTERISTIC_UUID, bytes(20), response=True)
            assert err.value.code == 0x0E
            with pytest.raises(BleakGATTProtocolError):  # no write-without-response on this char
                await client.write_gatt_char(ACK_CHARACTERISTIC_UUID, bytes(20), response=False)

    run(body)


def test_connect_hang_is_bounded_by_an_outer_wait_for(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        device = await scan_and_find(bz)
        bz.set_connect_behaviour(BUTTON, hang=True)
        client = BleakClient(device, timeout=30)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.connect(), 0.5)
        # bleak's cancellation cleanup sends Disconnect, which aborts the pending Connect
        await eventually(lambda: bz.calls["Disconnect"] >= 1)
        assert not bz.is_connected(BUTTON)
        with pytest.raises(TimeoutError):  # bleak's own timeout bounds it as well
            await BleakClient(device, timeout=0.3).connect()
        bz.set_connect_behaviour(BUTTON)  # a fresh client connects once the device answers
        async with BleakClient(device) as client:
            assert client.is_connected

    run(body)


def test_connect_failures(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        device = await scan_and_find(bz)
        bz.set_connect_behaviour(BUTTON, fail=True)
        with pytest.raises(BleakDBusError) as err:
            await BleakClient(device).connect()
        assert err.value.dbus_error == "org.bluez.Error.Failed"
        # le-connection-abort-by-local: bleak waits for Connected=False and retries by itself
        bz.set_connect_behaviour(BUTTON, fail="le-connection-abort-by-local", fail_times=1)
        async with BleakClient(device) as client:
            assert client.is_connected
        assert bz.calls["Connect"] == 3

    run(body)


def test_detection_callback_also_fires_on_connection_changes(run) -> None:
    """bleak reports every Device1 PropertiesChanged as an advert: the hub must dedupe frames."""

    async def body(bz: BlueZDouble) -> None:
        seen = Detections()
        async with BleakScanner(seen) as scanner:
            await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
            await seen.wait(1)
            device = scanner.discovered_devices[0]
            async with BleakClient(device):
                await seen.barrier(bz)
        repeats = seen.of(BUTTON)
        assert len(repeats) > 1 and {a.manufacturer_data[COMPANY_ID] for a in repeats} == {frame(1)}

    run(body)


def test_device_object_expires_and_stale_bledevice_is_not_found(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        device = await scan_and_find(bz)
        await eventually(lambda: bz.device_path(BUTTON) is None)  # bluetoothd: 30 s
        await asyncio.sleep(0.05)
        # bleak has seen InterfacesRemoved: BleakError "device ... not found" before any call
        # (had it not yet, Connect would get UnknownObject: BleakDeviceNotFoundError)
        with pytest.raises(BleakError, match="not found"):
            await BleakClient(device).connect()

    run(body, temporary_timeout_s=0.2)
