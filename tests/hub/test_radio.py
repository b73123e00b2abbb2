"""hub.radio against bleak's real BlueZ backend and hil.sim.bluez.BlueZDouble.

As in tests/hil/test_bluez_double.py: a private dbus-daemon per test, the double owning
org.bluez on it, DBUS_SYSTEM_BUS_ADDRESS pointing bleak (and the radio's own D-Bus line) at it,
and a fresh event loop per test (bleak keeps one D-Bus connection per loop). Thresholds and
retry waits are shrunk (FastRadio) so that silence, restarts and resets happen in about a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakAdapter

from bluez_testing import eventually
from hil.sim.bluez import AttError, BlueZDouble
from hil.sim.bluez_gatt import ACK_CHARACTERISTIC_UUID, CAREBEACON_SERVICE_UUID
from hub.radio import ACK_UUID, SERVICE_UUID, Radio, RadioHealth
from hub.radio_ack import covers
from hub.radio_bluez import bounded
from shared.frame import (
    ACK_DELIVERED,
    ACK_HELP,
    ACK_LEN,
    ACK_STORED,
    COMPANY_ID,
    S_HEARTBEAT_MIN,
    S_PREALARM,
    Codec,
)

pytestmark = pytest.mark.timeout(20)

BUTTON = "C8:2E:18:00:00:01"
PIR = "C8:2E:18:00:00:02"
MARKER = "C8:2E:18:00:00:FF"
ACK = bytes([0x11]) + bytes(range(1, 20))


CODEC = Codec(0x0000_0001, bytes(range(16)))


def ack(seq: int, status: int, clock: int = 0, setting: int = 0, value: int = 0) -> bytes:
    """A real sealed acknowledgement (``clock`` makes two of one status differ)."""
    return bytes(CODEC.encode_ack(bytearray(ACK_LEN), seq, status, clock, setting, value))


def frame(n: int) -> bytes:
    """A stand-in 24-byte device frame; n makes each transmission differ (BlueZ drops repeats)."""
    return bytes([0x10]) + n.to_bytes(4, "big") + bytes(19)


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


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="carebeacon.radio")
    return caplog


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
            await bz.advertise(address, {COMPANY_ID: frame(n)})
            for _ in range(5):
                if heard.has(address, frame(n)):
                    return n
                await asyncio.sleep(0.01)
            n += 1


def radio_for(heard: Heard, healths: Healths | None = None, **kw: Any) -> FastRadio:
    kw.setdefault("silence_restart_s", 30)
    kw.setdefault("silence_reset_s", 60)
    return FastRadio(on_advert=heard, on_health=healths, **kw)


# -- scanning -------------------------------------------------------------------------------------


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


def test_ack_uuids_match_the_protocol() -> None:
    assert (SERVICE_UUID, ACK_UUID) == (CAREBEACON_SERVICE_UUID, ACK_CHARACTERISTIC_UUID)


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


# -- the watchdog ---------------------------------------------------------------------------------


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


# -- acknowledgements -----------------------------------------------------------------------------


def test_ack_reaches_the_device(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        try:
            await advertise_until_heard(bz, heard, BUTTON, 1)
            assert await radio.send_ack(BUTTON, ACK)
            assert got == [ACK] and bz.writes[-1].type == "request"  # write with response
            assert not bz.is_connected(BUTTON)
            assert await radio.send_ack(BUTTON.lower(), ACK)  # addresses: any case
            assert got == [ACK, ACK]
            assert bz.calls["Connect"] == 2 and bz.calls["Disconnect"] == 2
            with pytest.raises(ValueError):
                await radio.send_ack(BUTTON, ACK[:19])  # a caller bug, not radio trouble
        finally:
            await radio.stop()

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
            assert radio.health.adverts > adverts + 1  # bleak did report the connection's echoes
            await asyncio.sleep(0.25)  # a new scan cycle: the controller reports a repeat again
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(n)})
            assert await bz.advertise(BUTTON, {COMPANY_ID: frame(n + 1)})  # a retransmission
            await eventually(lambda: heard.has(BUTTON, frame(n + 1)))
            assert [p for a, p, _ in heard.items if a == BUTTON] == [frame(n), frame(n + 1)]
        finally:
            await radio.stop()

    run(body, scan_cycle_s=0.2)


def test_hung_connect_returns_false_in_time_and_a_later_ack_works(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        heard = Heard()
        radio = radio_for(heard, connect_timeout_s=0.5)
        await radio.start()
        try:
            await advertise_until_heard(bz, heard, BUTTON, 1)
            bz.set_connect_behaviour(BUTTON, hang=True)
            t0 = time.monotonic()
            assert not await radio.send_ack(BUTTON, ACK)
            elapsed = time.monotonic() - t0
            assert 0.4 < elapsed < 1.0
            assert "failed (timeout)" in warnings(logs)
            await eventually(lambda: not bz.is_connected(BUTTON))
            t0 = time.monotonic()
            assert not await radio.send_ack(BUTTON, ACK)  # backing off: no connect at all
            assert time.monotonic() - t0 < 0.1 and "backing off after timeout" in warnings(logs)
            bz.set_connect_behaviour(BUTTON)  # the device answers again
            await asyncio.sleep(0.35)
            assert await radio.send_ack(BUTTON, ACK)
            assert got == [ACK]
        finally:
            await radio.stop()

    run(body)


def test_refused_write_returns_false(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        def refuse(data: bytes) -> None:
            raise AttError(0x0E)

        bz.on_write(BUTTON, refuse)
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        try:
            await advertise_until_heard(bz, heard, BUTTON, 1)
            assert not await radio.send_ack(BUTTON, ACK)
            assert not bz.is_connected(BUTTON)  # disconnected after the failure too
            assert "failed (write_failed)" in warnings(logs)
        finally:
            await radio.stop()

    run(body)


def test_unknown_address_returns_false_quickly(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        radio = radio_for(Heard())
        await radio.start()
        try:
            t0 = time.monotonic()
            assert not await radio.send_ack("C8:2E:18:00:00:99", ACK)
            assert time.monotonic() - t0 < 0.1
            assert bz.calls["Connect"] == 0
        finally:
            await radio.stop()
        assert "C8:2E:18:00:00:99 not sent: no advert from it" in warnings(logs)

    run(body)


def test_concurrent_acks_to_one_device_are_serialised(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        bz.set_connect_behaviour(BUTTON, delay_s=0.1)
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        try:
            await advertise_until_heard(bz, heard, BUTTON, 1)
            acks = [bytes([0x11, i]) + bytes(18) for i in range(3)]
            assert await asyncio.gather(*(radio.send_ack(BUTTON, a) for a in acks)) == [True] * 3
            assert got == acks  # in call order
            path = bz.device_path(BUTTON)
            links = [m for m, p, _ in bz.call_log if p == path and m in ("Connect", "Disconnect")]
            assert links == ["Connect", "Disconnect"] * 3  # one connection at a time
        finally:
            await radio.stop()

    run(body)


def test_connection_slots_are_bounded(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        devices = [f"C8:2E:18:00:01:{i:02X}" for i in range(4)]
        active, peak, got = 0, 0, []

        async def slow_device(data: bytes) -> None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.15)
            got.append(data)
            active -= 1

        for d in devices:
            bz.on_write(d, slow_device)
        heard = Heard()
        radio = radio_for(heard, max_connections=2)
        await radio.start()
        try:
            for d in devices:
                await advertise_until_heard(bz, heard, d, 1)
            results = await asyncio.gather(*(radio.send_ack(d, ACK) for d in devices))
            assert results == [True] * 4 and len(got) == 4
            assert peak == 2
        finally:
            await radio.stop()

    run(body)


def test_covers() -> None:
    stored, delivered = ack(7, ACK_STORED, clock=1), ack(7, ACK_DELIVERED, clock=2)
    assert covers(delivered, stored) and covers(stored, stored)
    assert not covers(stored, delivered)  # a lower status
    assert not covers(ack(8, ACK_HELP), stored)  # another frame
    heartbeat = ack(7, ACK_STORED, setting=S_HEARTBEAT_MIN, value=30)
    assert covers(ack(7, ACK_HELP, setting=S_HEARTBEAT_MIN, value=30), heartbeat)
    assert not covers(ack(7, ACK_HELP, setting=S_HEARTBEAT_MIN, value=20), heartbeat)
    assert not covers(ack(7, ACK_HELP), heartbeat)  # the setting did not reach the device
    assert covers(heartbeat, stored)  # a setting it did not ask for does no harm


def test_a_burst_of_acks_for_one_frame_is_coalesced_newest_status_last(run) -> None:
    """A device retransmits its alarm until acknowledged, and the hub answers every copy it
    hears, while the alarm's status climbs. Not one connection per copy: the acks waiting for
    the device are merged, and the device ends up with the newest status."""

    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        bz.set_connect_behaviour(BUTTON, delay_s=0.2)
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        try:
            await advertise_until_heard(bz, heard, BUTTON, 1)
            acks = [ack(7, ACK_STORED + i // 10, clock=i) for i in range(30)]  # 10 of each
            calls = []
            for a in acks:
                calls.append(asyncio.create_task(radio.send_ack(BUTTON, a)))
                await asyncio.sleep(0.02)
            assert await asyncio.gather(*calls) == [True] * 30  # each covered by what was written
            assert 1 <= len(got) <= 3, [g[5] for g in got]  # was 30
            statuses = [g[5] for g in got]
            assert statuses == sorted(set(statuses))  # never an older status after a newer one
            assert got[-1][5] == ACK_HELP and covers(got[-1], acks[-1])
            assert bz.calls["Connect"] == len(got)

            # copies heard at once, before any connect: one write, the newest
            got.clear()
            burst = [ack(9, ACK_STORED, clock=i) for i in range(20)]
            results = await asyncio.gather(*(radio.send_ack(BUTTON, a) for a in burst))
            assert results == [True] * 20 and got == [burst[-1]]
        finally:
            await radio.stop()

    run(body)


def test_a_timed_out_connect_does_not_lose_the_newest_ack(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        heard = Heard()
        radio = radio_for(heard, connect_timeout_s=0.5)
        await radio.start()
        try:
            await advertise_until_heard(bz, heard, BUTTON, 1)
            bz.set_connect_behaviour(BUTTON, hang=True)
            t0 = time.monotonic()
            stored = asyncio.create_task(radio.send_ack(BUTTON, ack(7, ACK_STORED)))
            await asyncio.sleep(0.1)  # its connect hangs
            delivered = ack(7, ACK_DELIVERED, clock=1)
            later = asyncio.create_task(radio.send_ack(BUTTON, delivered))
            await asyncio.sleep(0.1)
            bz.set_connect_behaviour(BUTTON)  # the next connect works
            assert await later  # after the timeout and the backoff, not refused by it
            assert 0.5 + 0.3 - 0.05 < time.monotonic() - t0 < 2.0
            assert await stored  # the DELIVERED written in its place covers it
            assert got == [delivered]
        finally:
            await radio.stop()
        text = warnings(logs)
        assert "failed (timeout)" in text and "not sent" not in text

    run(body)


def test_an_older_status_is_never_written_after_a_newer_one_and_settings_count(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        bz.set_connect_behaviour(BUTTON, delay_s=0.2)
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        try:
            await advertise_until_heard(bz, heard, BUTTON, 1)
            help_ = ack(7, ACK_HELP)
            first = asyncio.create_task(radio.send_ack(BUTTON, help_))
            await asyncio.sleep(0.05)  # HELP for frame 7 is being written
            late = asyncio.create_task(radio.send_ack(BUTTON, ack(7, ACK_DELIVERED)))
            heartbeat = ack(8, ACK_STORED, setting=S_HEARTBEAT_MIN, value=30)
            replaced = asyncio.create_task(radio.send_ack(BUTTON, heartbeat))
            await asyncio.sleep(0.01)
            prealarm = ack(8, ACK_STORED, clock=1, setting=S_PREALARM, value=5)
            newest = asyncio.create_task(radio.send_ack(BUTTON, prealarm))
            results = await asyncio.gather(first, late, replaced, newest)
            # the late DELIVERED is covered by HELP; the heartbeat setting never reached the
            # device (the pipeline keeps it for the next ack), the pre-alarm did
            assert results == [True, True, False, True]
            assert got == [help_, prealarm]  # frames 7 and 8 each get their ack
        finally:
            await radio.stop()

    run(body)


def test_a_device_that_does_not_answer_does_not_hold_up_another(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: dict[str, list[bytes]] = {BUTTON: [], PIR: []}
        for address, writes in got.items():
            bz.on_write(address, writes.append)
        heard = Heard()
        radio = radio_for(heard, connect_timeout_s=1.0, max_connections=2)
        await radio.start()
        try:
            for address in (BUTTON, PIR):
                await advertise_until_heard(bz, heard, address, 1)
            bz.set_connect_behaviour(BUTTON, hang=True)
            button = [asyncio.create_task(radio.send_ack(BUTTON, ack(3, ACK_STORED)))]
            await asyncio.sleep(0.05)
            for i in range(1, 10):  # retransmissions heard while the connect hangs
                button.append(asyncio.create_task(radio.send_ack(BUTTON, ack(3, 1, clock=i))))
            for i in range(3):
                t0 = time.monotonic()
                assert await radio.send_ack(PIR, ack(20 + i, ACK_STORED))
                assert time.monotonic() - t0 < 0.5
            assert not any(t.done() for t in button)  # still in its connect
            assert len(got[PIR]) == 3 and got[BUTTON] == []
            bz.set_connect_behaviour(BUTTON)
            assert await asyncio.gather(*button) == [True] * 10
            assert got[BUTTON] == [ack(3, ACK_STORED, clock=9)]  # the newest, once
        finally:
            await radio.stop()

    run(body)


def test_stop_ends_acks_waiting_out_a_backoff(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard = Heard()
        radio = radio_for(heard, connect_timeout_s=0.3)
        radio.ack_backoff_s = {**FastRadio.ack_backoff_s, "timeout": (30.0, 30.0)}
        await radio.start()
        await advertise_until_heard(bz, heard, BUTTON, 1)
        bz.set_connect_behaviour(BUTTON, hang=True)
        first = asyncio.create_task(radio.send_ack(BUTTON, ack(7, ACK_STORED)))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(radio.send_ack(BUTTON, ack(7, ACK_DELIVERED)))
        await asyncio.sleep(0.5)  # the connect timed out; DELIVERED waits 30 s
        assert not first.done() and not second.done()
        t0 = time.monotonic()
        await radio.stop()
        assert time.monotonic() - t0 < 1.0
        assert await asyncio.wait_for(asyncio.gather(first, second), 0.5) == [False, False]
        assert bz.calls["Connect"] == 1

    run(body)


# -- stopping -------------------------------------------------------------------------------------


def _ours(task: asyncio.Task[Any]) -> bool:
    """A task the double runs (it serves bluetoothd's side) is not the radio's to stop."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is None or Path("hil", "sim").as_posix() not in Path(code.co_filename).as_posix()


def test_stop_leaves_no_task_running(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        await BleakAdapter.get()  # bleak's per-loop manager and its bus watcher: not ours
        baseline = asyncio.all_tasks()
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        heard = Heard()
        radio = radio_for(heard, silence_restart_s=0.5, connect_timeout_s=5)
        await radio.start()
        await advertise_until_heard(bz, heard, BUTTON, 1)
        assert await radio.send_ack(BUTTON, ACK)
        bz.set_connect_behaviour(BUTTON, hang=True)
        hung = asyncio.create_task(radio.send_ack(BUTTON, ACK))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await radio.stop()
        assert time.monotonic() - t0 < 1.0
        assert await asyncio.wait_for(hung, 0.5) is False
        assert not await radio.send_ack(BUTTON, ACK)  # stopped: refused at once
        assert not bz.discovering

        def leftovers() -> set[asyncio.Task[Any]]:
            current = asyncio.current_task()
            return {t for t in asyncio.all_tasks() - baseline if t is not current and _ours(t)}

        await eventually(lambda: not leftovers(), timeout=1)
        await asyncio.sleep(0.3)  # and nothing comes back (no watchdog tick, no poll)
        assert not leftovers()

    run(body)


def test_start_stop_start_again(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        await radio.stop()
        await radio.start()
        try:
            assert radio.health.state == "scanning"
            await advertise_until_heard(bz, heard, BUTTON, 1)
        finally:
            await radio.stop()

    run(body)


def test_bounded_gives_up_on_an_operation_whose_cancellation_hangs() -> None:
    """A wedged D-Bus: the call ignores its timeout and its cleanup hangs too."""

    async def main() -> None:
        release = asyncio.Event()

        async def wedged() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                await release.wait()  # e.g. bleak's Disconnect on a bus that never answers

        tasks: set[asyncio.Task[Any]] = set()
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="no answer within 0.2 s"):
            await bounded(wedged(), 0.2, "wedged call", tasks, grace=0.1)
        assert time.monotonic() - t0 < 0.5
        assert len(tasks) == 1  # still tracked, for Radio.stop()
        release.set()
        await asyncio.sleep(0.01)
        assert not tasks

    asyncio.run(main())
