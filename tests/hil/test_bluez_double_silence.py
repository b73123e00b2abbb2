"""A scanner that goes silent without an error: a stall until discovery restarts, an adapter
removed under a running scanner (detectable by polling) and back under another name."""

from __future__ import annotations

import pytest
from bleak import BleakAdapter, BleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError
from bluez_double_testing import BUTTON, Detections, frame

from bluez_testing import eventually
from hil.sim.bluez import BlueZDouble
from shared.frame import COMPANY_ID

pytestmark = pytest.mark.timeout(20)


async def adapter_missing() -> bool:
    try:
        await BleakAdapter.get()  # cheap: bleak's cached view of BlueZ, no D-Bus call
    except BleakBluetoothNotAvailableError:
        return True
    return False


async def adapter_present() -> bool:
    return not await adapter_missing()


def test_silent_stall_until_discovery_restarts(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        seen = Detections()
        async with BleakScanner(seen):
            bz.stop_adverts(cleared_by="discovery_restart")
            assert bz.discovering
            assert not await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
        assert seen.items == []
        async with BleakScanner(seen):  # the watchdog's scanner restart
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(2)})
            await seen.wait(1)

    run(body)


def test_adapter_removal_is_silent_for_a_running_scanner_and_detectable(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        seen = Detections()
        scanner = BleakScanner(seen)
        await scanner.start()
        await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
        await seen.wait(1)
        assert len(scanner.discovered_devices) == 1
        await bz.remove_adapter()
        assert not await bz.advertise(BUTTON, {COMPANY_ID: frame(2)})
        # the running scanner gets no error; a watchdog can poll for the adapter
        await eventually(adapter_missing)
        assert scanner.discovered_devices == [] and len(seen.items) == 1
        with pytest.raises(BleakDBusError) as err:
            await scanner.stop()
        assert err.value.dbus_error == "org.freedesktop.DBus.Error.UnknownObject"
        with pytest.raises(BleakBluetoothNotAvailableError):
            await BleakScanner().start()
        await bz.restore_adapter("hci1")  # it may come back under another name
        await eventually(adapter_present)
        async with BleakScanner(seen):
            await bz.advertise(BUTTON, {COMPANY_ID: frame(3)})
            await seen.wait(2)
        assert seen.items[-1][0].details["path"].startswith("/org/bluez/hci1/")

    run(body)
