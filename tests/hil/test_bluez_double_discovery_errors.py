"""Discovery errors as bleak meets them on the BlueZ double: InProgress on start (sticky until a
power cycle) and on stop, one discovery session per D-Bus connection."""

from __future__ import annotations

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDBusError
from bluez_double_testing import BUTTON, Detections, frame
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from hil.sim.bluez import BlueZDouble
from shared.frame import COMPANY_ID

pytestmark = pytest.mark.timeout(20)
IN_PROGRESS = "org.bluez.Error.InProgress"


async def bluez_call(member: str, path: str, iface: str, sig: str = "", body=()) -> Message:
    """A method call from a D-Bus connection of its own (not bleak's)."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        return await bus.call(
            Message(
                destination="org.bluez",
                path=path,
                interface=iface,
                member=member,
                signature=sig,
                body=list(body),
            )
        )
    finally:
        bus.disconnect()


def test_start_discovery_in_progress_is_raised_not_retried(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        bz.inject_in_progress(1, "StartDiscovery")
        seen = Detections()
        scanner = BleakScanner(seen)
        with pytest.raises(BleakDBusError) as err:
            await scanner.start()
        assert err.value.dbus_error == IN_PROGRESS
        assert bz.calls["StartDiscovery"] == 1  # bleak 3.1 does not retry a start
        await scanner.stop()  # harmless: nothing to stop, no D-Bus call
        assert bz.calls["StopDiscovery"] == 0
        await scanner.start()  # the caller's retry works
        await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
        await seen.wait(1)
        await scanner.stop()

    run(body)


def test_sticky_in_progress_is_cleared_by_power_cycle_not_by_foreign_stop(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        bz.inject_in_progress(1, "StartDiscovery", sticky=True)  # older bluetoothd behaviour
        for _ in range(2):
            with pytest.raises(BleakDBusError) as err:
                await BleakScanner().start()
            assert err.value.dbus_error == IN_PROGRESS
        # a StopDiscovery from another D-Bus connection does not touch bleak's session
        reply = await bluez_call("StopDiscovery", "/org/bluez/hci0", "org.bluez.Adapter1")
        assert reply.message_type == MessageType.ERROR
        assert (reply.error_name, reply.body) == (
            "org.bluez.Error.Failed",
            ["No discovery started"],
        )
        with pytest.raises(BleakDBusError):
            await BleakScanner().start()
        for on in (False, True):  # the reset ladder's power cycle clears every session
            reply = await bluez_call(
                "Set",
                "/org/bluez/hci0",
                "org.freedesktop.DBus.Properties",
                "ssv",
                ["org.bluez.Adapter1", "Powered", Variant("b", on)],
            )
            assert reply.message_type == MessageType.METHOD_RETURN
        seen = Detections()
        async with BleakScanner(seen):
            await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
            await seen.wait(1)

    run(body)


def test_stop_discovery_in_progress_is_recovered_by_bleak(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        scanner = BleakScanner()
        await scanner.start()
        bz.inject_in_progress(1, "StopDiscovery")
        await scanner.stop()  # bleak 3.1: StopDiscovery -> InProgress -> Start + Stop, no error
        assert (bz.calls["StartDiscovery"], bz.calls["StopDiscovery"]) == (2, 2)
        assert not bz.discovering
        seen = Detections()
        async with BleakScanner(seen):  # and the next scan really reports adverts
            await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
            await seen.wait(1)

    run(body)


def test_stop_in_progress_without_recovery_leaves_a_silent_scan(run) -> None:
    """What bleak's recovery prevents (bluez#807), seen by a client that ignores the error."""

    async def body(bz: BlueZDouble) -> None:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()

        async def call(member: str) -> Message:
            return await bus.call(
                Message(
                    destination="org.bluez",
                    path="/org/bluez/hci0",
                    interface="org.bluez.Adapter1",
                    member=member,
                )
            )

        assert (await call("StartDiscovery")).message_type == MessageType.METHOD_RETURN
        bz.inject_in_progress(1, "StopDiscovery")
        assert (await call("StopDiscovery")).error_name == IN_PROGRESS
        assert (await call("StartDiscovery")).message_type == MessageType.METHOD_RETURN
        assert bz.discovering and not bz.scanning
        assert not await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})  # silently lost
        assert (await call("StopDiscovery")).message_type == MessageType.METHOD_RETURN
        assert not bz.discovering  # the idle branch reset it
        bus.disconnect()

    run(body)


def test_second_scan_in_the_same_event_loop_gets_in_progress(run) -> None:
    """bluetoothd allows one discovery session per D-Bus connection; bleak has one per loop."""

    async def body(bz: BlueZDouble) -> None:
        seen = Detections()
        async with BleakScanner(seen) as scanner:
            await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
            await seen.wait(1)
            with pytest.raises(BleakDBusError) as err:
                await BleakScanner().start()
            assert err.value.dbus_error == IN_PROGRESS
            # an address string makes BleakClient run exactly such a hidden scan first
            with pytest.raises(BleakDBusError) as err:
                await BleakClient(BUTTON, timeout=2).connect()
            assert err.value.dbus_error == IN_PROGRESS
            # the BLEDevice from the running scanner connects without scanning
            async with BleakClient(scanner.discovered_devices[0]) as client:
                assert client.is_connected
        assert bz.calls["StartDiscovery"] == 3 and bz.calls["Connect"] == 1

    run(body)
