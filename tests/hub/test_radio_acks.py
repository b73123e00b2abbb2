"""Acknowledgements written to devices: with response, to an address in any case, failures
returned as False in time, one connection per device at a time, bounded connection slots,
a device that does not answer not holding up another, the D-Bus connection dying during a
write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from radio_testing import ACK, BUTTON, PIR, ack, radio_hearing, warnings

from bluez_testing import FlakyBus, eventually
from hil.sim.bluez import AttError, BlueZDouble
from hil.sim.bluez_gatt import ACK_CHARACTERISTIC_UUID, CAREBEACON_SERVICE_UUID
from hub.radio import ACK_UUID, SERVICE_UUID
from shared.frame import ACK_STORED

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def flaky_bus(system_bus):
    """A FlakyBus in front of the private bus. The test routes the hub through it once the
    radio runs (``relay_new_connections``), so that only the BleakClients' connections go
    through the relay (why: FlakyBus); the double's never does."""
    with FlakyBus(system_bus.socket_path) as bus:
        yield bus


def relay_new_connections(bus: FlakyBus, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub's D-Bus connections opened from now on go through ``bus``."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)


def log_without_traceback(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Loop exception handler for the FlakyBus tests. After a cut, bleak's disconnect() sends
    Device1.Disconnect on the dead connection and dbus-fast drops that send's failed future:
    "Future exception was never retrieved" when the GC gets to it, which may be in the middle
    of an ast.parse (pytest rewriting a module). The default handler then formats a traceback,
    whose own ast.parse trips CPython 3.11's "AST constructor recursion depth mismatch"
    (gh-106905) and fails the session. Same report, without the traceback."""
    logging.getLogger("asyncio").error("%s: %r", context["message"], context.get("exception"))


@contextlib.asynccontextmanager
async def radio_on_flaky_bus(
    bz: BlueZDouble, bus: FlakyBus, monkeypatch: pytest.MonkeyPatch, got: list[bytes]
) -> AsyncIterator[Any]:
    """A radio that heard BUTTON, whose ack writes land in `got`; its connections from then
    on (the BleakClients') go through `bus`."""
    asyncio.get_running_loop().set_exception_handler(log_without_traceback)
    bz.on_write(BUTTON, got.append)
    async with radio_hearing(bz, BUTTON) as radio:
        relay_new_connections(bus, monkeypatch)
        yield radio


def test_ack_uuids_match_the_protocol() -> None:
    assert (SERVICE_UUID, ACK_UUID) == (CAREBEACON_SERVICE_UUID, ACK_CHARACTERISTIC_UUID)


def test_ack_reaches_the_device(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        async with radio_hearing(bz, BUTTON) as radio:
            assert await radio.send_ack(BUTTON, ACK)
            assert got == [ACK] and bz.writes[-1].type == "request"  # write with response
            assert not bz.is_connected(BUTTON)
            assert await radio.send_ack(BUTTON.lower(), ACK)  # addresses: any case
            assert got == [ACK, ACK]
            assert bz.calls["Connect"] == 2 and bz.calls["Disconnect"] == 2
            with pytest.raises(ValueError):
                await radio.send_ack(BUTTON, ACK[:19])  # a caller bug, not radio trouble

    run(body)


def test_hung_connect_returns_false_in_time_and_a_later_ack_works(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        async with radio_hearing(bz, BUTTON, connect_timeout_s=0.5) as radio:
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

    run(body)


def test_refused_write_returns_false(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        def refuse(data: bytes) -> None:
            raise AttError(0x0E)

        bz.on_write(BUTTON, refuse)
        async with radio_hearing(bz, BUTTON) as radio:
            assert not await radio.send_ack(BUTTON, ACK)
            assert not bz.is_connected(BUTTON)  # disconnected after the failure too
            assert "failed (write_failed)" in warnings(logs)

    run(body)


def test_unknown_address_returns_false_quickly(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        async with radio_hearing(bz) as radio:
            t0 = time.monotonic()
            assert not await radio.send_ack("C8:2E:18:00:00:99", ACK)
            assert time.monotonic() - t0 < 0.1
            assert bz.calls["Connect"] == 0
        assert "C8:2E:18:00:00:99 not sent: no advert from it" in warnings(logs)

    run(body)


def test_concurrent_acks_to_one_device_are_serialised(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        bz.set_connect_behaviour(BUTTON, delay_s=0.1)
        async with radio_hearing(bz, BUTTON) as radio:
            acks = [bytes([0x11, i]) + bytes(18) for i in range(3)]
            assert await asyncio.gather(*(radio.send_ack(BUTTON, a) for a in acks)) == [True] * 3
            assert got == acks  # in call order
            path = bz.device_path(BUTTON)
            links = [m for m, p, _ in bz.call_log if p == path and m in ("Connect", "Disconnect")]
            assert links == ["Connect", "Disconnect"] * 3  # one connection at a time

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
        async with radio_hearing(bz, *devices, max_connections=2) as radio:
            results = await asyncio.gather(*(radio.send_ack(d, ACK) for d in devices))
            assert results == [True] * 4 and len(got) == 4
            assert peak == 2

    run(body)


def test_a_device_that_does_not_answer_does_not_hold_up_another(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: dict[str, list[bytes]] = {BUTTON: [], PIR: []}
        for address, writes in got.items():
            bz.on_write(address, writes.append)
        async with radio_hearing(
            bz, BUTTON, PIR, connect_timeout_s=1.0, max_connections=2
        ) as radio:
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

    run(body)


@pytest.mark.parametrize("how", ["eof", "reset"])  # EOFError, ConnectionResetError (an OSError)
def test_bus_lost_during_the_write_is_a_failed_write_and_backs_off(
    run, flaky_bus: FlakyBus, monkeypatch: pytest.MonkeyPatch, logs, how: str
) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        async with radio_on_flaky_bus(bz, flaky_bus, monkeypatch, got) as radio:
            flaky_bus.cut_next_write(how)
            assert not await radio.send_ack(BUTTON, ack(8, ACK_STORED))  # not raised
            assert flaky_bus.cuts == [how]
            assert "failed (write_failed): D-Bus connection lost during the write" in warnings(logs)
            t0 = time.monotonic()  # the device's next retransmission, at once: backing off
            assert not await radio.send_ack(BUTTON, ack(8, ACK_STORED, clock=1))
            assert time.monotonic() - t0 < 0.1
            assert "backing off after write_failed" in warnings(logs)
            await asyncio.sleep(0.15)  # FastRadio: 0.1 s after a first write_failed
            assert await radio.send_ack(BUTTON, ack(8, ACK_STORED, clock=2))  # its ack, at last
            assert got[-1] == ack(8, ACK_STORED, clock=2)
            assert not bz.is_connected(BUTTON)

    run(body)


@pytest.mark.parametrize("how", ["eof", "reset"])
def test_ack_waiting_behind_a_write_that_lost_its_bus_is_written_after_the_backoff(
    run, flaky_bus: FlakyBus, monkeypatch: pytest.MonkeyPatch, logs, how: str
) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        async with radio_on_flaky_bus(bz, flaky_bus, monkeypatch, got) as radio:
            bz.set_connect_behaviour(BUTTON, delay_s=0.2)
            flaky_bus.cut_next_write(how)
            t0 = time.monotonic()
            first = asyncio.create_task(radio.send_ack(BUTTON, ack(5, ACK_STORED)))
            await asyncio.sleep(0.1)  # its connect in progress: the retransmission's ack waits
            second = asyncio.create_task(radio.send_ack(BUTTON, ack(5, ACK_STORED, clock=1)))
            assert await asyncio.gather(first, second) == [True, True]  # the newer one answers
            assert time.monotonic() - t0 > 0.2 + 0.1  # its connect, then the backoff
            waited = f"acks to {BUTTON} wait: backing off after write_failed"
            assert any(r.getMessage().startswith(waited) for r in logs.records)  # on a slow box too
            assert flaky_bus.cuts == [how]
            assert "failed (write_failed): D-Bus connection lost during the write" in warnings(logs)
            assert got[-1] == ack(5, ACK_STORED, clock=1)

    run(body)
