"""The radio's watchdog: silence restarts the scanner then power-cycles the adapter; an adapter
powered off, unplugged or missing at start is reported and picked up again when it returns."""

from __future__ import annotations

import asyncio
import time

import pytest
from radio_testing import (
    ACK,
    BUTTON,
    Healths,
    Heard,
    ack,
    advertise_until_heard,
    frame,
    radio_for,
    warnings,
)

from bluez_testing import eventually
from hil.sim.bluez import BlueZDouble
from shared.frame import ACK_DELIVERED, COMPANY_ID

pytestmark = pytest.mark.timeout(20)


def test_silence_restarts_the_scanner(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths, silence_restart_s=0.5, silence_reset_s=30)
        await radio.start()
        try:
            n = await advertise_until_heard(bz, heard, BUTTON, 1)
            bz.stop_adverts(cleared_by="discovery_restart")  # discovery looks alive, hears nothing
            assert not await bz.advertise(BUTTON, {COMPANY_ID: frame(n + 1)})
            t0 = time.monotonic()
            await healths.reach("starting", "scanning", "restarting", "scanning")
            assert 0.3 < time.monotonic() - t0 < 1.5
            assert radio.health.restarts == 1 and radio.health.resets == 0
            assert healths.items[-2].detail.startswith("no advert for ")
            assert healths.items[-2].status == "degraded"
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(n + 2)})  # flowing again
            await eventually(lambda: heard.has(BUTTON, frame(n + 2)))
        finally:
            await radio.stop()

    run(body)


def test_persistent_silence_power_cycles_the_adapter(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths, silence_restart_s=0.3, silence_reset_s=1.0)
        await radio.start()
        try:
            n = await advertise_until_heard(bz, heard, BUTTON, 1)
            bz.stop_adverts(cleared_by="power_cycle")  # a scanner restart does not help
            await healths.reach("restarting", "scanning", "resetting", "scanning", timeout=4)
            health = radio.health
            assert health.resets == 1 and health.restarts >= 1
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(n + 1)})
            await eventually(lambda: heard.has(BUTTON, frame(n + 1)))
            # the advert ended the escalation: nothing more while adverts keep coming
            for i in range(10):
                await bz.advertise(BUTTON, {COMPANY_ID: frame(n + 2 + i)})
                await asyncio.sleep(0.1)
            assert radio.health.resets == 1 and radio.health.restarts == health.restarts
        finally:
            await radio.stop()

    run(body)


def test_adapter_powered_off_under_the_radio_is_noticed_without_waiting_for_silence(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths)  # 30 s silence threshold: not what brings it back
        radio.tick_s = 0.05
        await radio.start()
        try:
            await bz.set_powered(False)  # e.g. rfkill, or another program
            await bz.set_powered(True)
            await healths.reach("restarting", "scanning", timeout=2)
            assert "stopped discovering under us" in healths.items[-2].detail
            assert bz.discovering
            await advertise_until_heard(bz, heard, BUTTON, 1)
        finally:
            await radio.stop()

    run(body)


@pytest.mark.parametrize(
    ("name", "mac"),
    [("hci1", None), ("hci2", "00:1A:7D:DA:71:99")],
    ids=["same-adapter-as-hci1", "other-adapter-as-hci2"],
)
def test_adapter_vanishes_and_returns(run, logs, name: str, mac: str | None) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths, silence_restart_s=2, silence_reset_s=5)
        radio.tick_s = 0.05
        await radio.start()
        try:
            n = await advertise_until_heard(bz, heard, BUTTON, 1)
            await bz.remove_adapter()  # USB unplug: the running scanner hears only silence
            await healths.reach("scanning", "no_adapter", timeout=1)
            assert radio.health.status == "down"
            detail = "adapter hci0 (00:1A:7D:DA:71:13) not found; adapters present: none"
            assert radio.health.detail == detail
            assert healths.states.count("no_adapter") == 1  # one publication while it is away
            starts = bz.calls["StartDiscovery"]
            cpu = time.process_time()
            await asyncio.sleep(0.5)
            assert time.process_time() - cpu < 0.2  # polling, not spinning
            assert bz.calls["StartDiscovery"] == starts and radio.health.state == "no_adapter"
            t0 = time.monotonic()
            assert not await radio.send_ack(BUTTON, ACK)
            assert time.monotonic() - t0 < 0.1

            if mac:
                bz.adapter_address = mac  # a different controller is plugged in
            await bz.restore_adapter(name)
            await healths.reach("no_adapter", "scanning", timeout=2)
            assert radio.health.detail == f"active scanning on {name}"
            assert radio.health.status == "ok"
            n = await advertise_until_heard(bz, heard, BUTTON, n + 1)
            got: list[bytes] = []
            bz.on_write(BUTTON, got.append)
            assert await radio.send_ack(BUTTON, ACK)  # connects through the new adapter
            assert got == [ACK]
        finally:
            await radio.stop()
        text = warnings(logs)
        assert "adapter hci0 vanished while scanning" in text and f"no_adapter: {detail}" in text
        if mac:
            assert f"using the only adapter, {name} ({mac})" in text
        else:
            assert f"adapter hci0 is now {name}" in text

    run(body)


def test_radio_starting_without_adapter_reports_and_waits_for_it(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        await bz.remove_adapter()
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths)
        await radio.start()  # does not raise
        try:
            assert radio.health.state == "no_adapter"
            assert radio.health.detail == "adapter hci0 not found; adapters present: none"
            await bz.restore_adapter()
            await healths.reach("no_adapter", "scanning")
            await advertise_until_heard(bz, heard, BUTTON, 1)
        finally:
            await radio.stop()

    run(body)


def test_our_own_ack_connections_are_no_sign_the_scanner_hears(run) -> None:
    """Review finding: bleak reports an ack connection's Connected / ServicesResolved changes
    as detections of the device's cached advert. They counted as adverts: with acks going out
    every half second (the platform's DELIVERED, HELP, settings) a scanner gone deaf was never
    restarted and its health stayed "scanning"."""

    async def body(bz: BlueZDouble) -> None:
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths, silence_restart_s=1.0, silence_reset_s=30)
        radio.tick_s = 0.05
        await radio.start()
        try:
            n = await advertise_until_heard(bz, heard, BUTTON, 1)
            bz.stop_adverts(cleared_by="discovery_restart")  # the scanner goes deaf
            t0 = time.monotonic()
            clock = 0
            while time.monotonic() - t0 < 3.0 and radio.health.restarts == 0:
                clock += 1
                await radio.send_ack(BUTTON, ack(n, ACK_DELIVERED, clock=clock))
                await asyncio.sleep(0.5)
            assert radio.health.restarts >= 1, radio.health
        finally:
            await radio.stop()

    run(body, timeout=30)
