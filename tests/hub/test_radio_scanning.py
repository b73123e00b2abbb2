"""Radio scanning (hub.radio on the BlueZ double, see radio_testing.py): only CareBeacon adverts
reach on_advert and byte-identical repeats do not; a failing start is retried, power-cycled,
falls back from passive to active scanning, or reports an error and keeps retrying."""

from __future__ import annotations

import asyncio
import logging

import pytest
from radio_testing import (
    ACK,
    BUTTON,
    MARKER,
    Healths,
    Heard,
    advertise_until_heard,
    frame,
    radio_for,
    warnings,
)

from bluez_testing import eventually
from hil.sim.bluez import BlueZDouble
from shared.frame import COMPANY_ID

pytestmark = pytest.mark.timeout(20)


def test_only_carebeacon_adverts_reach_on_advert_with_rssi(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths)
        await radio.start()
        try:
            assert radio.health.state == "scanning" and radio.health.status == "ok"
            assert radio.health.detail == "active scanning on hci0"
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(1)}, rssi=-67)
            assert await bz.advertise("C8:2E:18:00:00:10", {0x004C: frame(2)})  # another company
            assert await bz.advertise("C8:2E:18:00:00:11", {COMPANY_ID: frame(3)[:23]})
            assert await bz.advertise("C8:2E:18:00:00:12", {COMPANY_ID: frame(4) + b"\0"})
            assert await bz.advertise("C8:2E:18:00:00:13", name="television")  # no mfr data
            assert await bz.advertise(MARKER, {COMPANY_ID: frame(5)}, rssi=-80)  # order barrier
            await eventually(lambda: heard.has(MARKER, frame(5)))
            assert heard.items == [(BUTTON, frame(1), -67), (MARKER, frame(5), -80)]
            health = radio.health
            assert health.adverts == 6  # every advert proves the radio hears
            assert health.last_advert_age_s is not None and health.last_advert_age_s < 1
            assert (health.restarts, health.resets) == (0, 0)
            assert healths.states == ["starting", "scanning"]
        finally:
            await radio.stop()
        assert not bz.discovering

    run(body)


def test_in_progress_on_start_is_retried(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        bz.inject_in_progress(2, "StartDiscovery")
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        try:
            assert radio.health.state == "scanning"
            assert bz.calls["StartDiscovery"] == 3 and radio.health.resets == 0
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
            await eventually(lambda: heard.has(BUTTON, frame(1)))
        finally:
            await radio.stop()

    run(body)


def test_persistent_in_progress_power_cycles_the_adapter(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        # older bluetoothd: the failed start leaves bleak's session listed, so every later
        # start from bleak's connection fails too, until a power cycle clears all sessions
        bz.inject_in_progress(1, "StartDiscovery", sticky=True)
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths)
        await radio.start()
        try:
            assert healths.states == ["starting", "resetting", "scanning"]
            assert radio.health.resets == 1
            assert bz.calls["StartDiscovery"] == radio.start_attempts + 1
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
            await eventually(lambda: heard.has(BUTTON, frame(1)))
        finally:
            await radio.stop()
        assert "org.bluez.Error.InProgress" in warnings(logs)

    run(body)


def test_passive_scanning_falls_back_to_active(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths, scanning="passive", silence_restart_s=0.5)
        await radio.start()
        try:
            detail = radio.health.detail
            assert radio.health.state == "scanning" and radio.health.status == "ok"
            assert detail.startswith("passive scanning unavailable (") and "experimental" in detail
            assert detail.endswith("; active scanning on hci0")
            assert bz.calls["RegisterMonitor"] == 1 and bz.calls["StartDiscovery"] == 1
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(1)})
            await eventually(lambda: heard.has(BUTTON, frame(1)))
            await eventually(lambda: radio.health.restarts >= 1)  # silence: a scanner restart
            await healths.reach("restarting", "scanning")
            assert bz.calls["RegisterMonitor"] == 1  # the fallback sticks: no passive retry
        finally:
            await radio.stop()
        assert "falling back to active scanning" in warnings(logs)
        assert len(detail) <= 200

    run(body)


def test_start_failing_for_long_reports_error_and_keeps_retrying(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        # 3 starts, power cycle, 3 starts: down; the watchdog retries until discovery starts
        bz.inject_in_progress(10, "StartDiscovery")
        heard, healths = Heard(), Healths()
        radio = radio_for(heard, healths)
        await radio.start()  # does not raise
        try:
            assert radio.health.state == "error" and radio.health.status == "down"
            assert "org.bluez.Error.InProgress" in radio.health.detail
            await healths.reach("starting", "resetting", "error", "resetting", "scanning")
            assert radio.health.resets == 2 and bz.calls["StartDiscovery"] == 11
            await advertise_until_heard(bz, heard, BUTTON, 1)
        finally:
            await radio.stop()
        assert any(
            r.levelno == logging.ERROR and "radio error" in r.getMessage() for r in logs.records
        )

    run(body)


def test_byte_identical_repeats_are_not_passed_on(run) -> None:
    """bleak reports our own ack connection's Connected/ServicesResolved changes as adverts
    carrying the cached manufacturer data, and BlueZ re-reports an unchanged advert after each
    scan cycle. Passed on, each echo would look like a retransmission to the pipeline, which
    answers duplicates with another ack: an endless ack loop. Real retransmissions differ."""

    async def body(bz: BlueZDouble) -> None:
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        try:
            n = await advertise_until_heard(bz, heard, BUTTON, 1)
            adverts = radio.health.adverts
            assert await radio.send_ack(BUTTON, ACK)
            assert await bz.advertise(MARKER, {COMPANY_ID: frame(99)})  # order barrier
            await eventually(lambda: heard.has(MARKER, frame(99)))
            # (the connection's echoes reached _on_detection; they are no adverts for the
            # watchdog either: test_radio_watchdog.py)
            assert radio.health.adverts >= adverts + 1
            await asyncio.sleep(0.25)  # a new scan cycle: the controller reports a repeat again
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(n)})
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(n + 1)})  # a retransmission
            await eventually(lambda: heard.has(BUTTON, frame(n + 1)))
            assert [p for a, p, _ in heard.items if a == BUTTON] == [frame(n), frame(n + 1)]
        finally:
            await radio.stop()

    run(body, scan_cycle_s=0.2)
