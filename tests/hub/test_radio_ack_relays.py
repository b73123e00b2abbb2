"""Relayed adverts must not starve a device's own acks (hub/radio_ack_limits.py).

An attacker relays a device's adverts live from many rotating random addresses (or replays a
recording of them) and never answers a connection. The pipeline answers each fresh copy with
an ack to the address it came from, and says which acks go to the device's own address (its
last new frame's, kept across restarts): ``own=True``; the relays' are ``own=False``. The
radio keeps a connection slot for the device's own address, queues acks for at most a few
other addresses per device and in all, and refuses the rest at once (logged once in a while,
not per advert)."""

from __future__ import annotations

import asyncio
import time

import pytest
from radio_testing import BUTTON, PIR, Heard, ack, frame, radio_for

from bluez_testing import eventually
from hil.sim.bluez import BlueZDouble
from hub.radio_ack_limits import OTHERS_PER_DEVICE, OTHERS_TOTAL, Addresses, Slots
from hub.radio_book import DeviceBook
from shared.frame import ACK_DELIVERED, ACK_HELP, ACK_STORED, COMPANY_ID

pytestmark = pytest.mark.timeout(30)

RELAYS = [f"5A:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}" for i in range(24)]  # random addresses


def ack_workers() -> int:
    return sum(t.get_name().startswith("carebeacon.radio.ack.") for t in asyncio.all_tasks())


def refusal_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "relayed adverts?" in r.getMessage()]


class Home:
    """A started radio, and adverts from the genuine devices and from relays."""

    def __init__(self, bz: BlueZDouble, heard: Heard) -> None:
        self.bz, self.heard = bz, heard

    async def advert(self, address: str, payload: bytes) -> None:
        await self.bz.advertise(address, {COMPANY_ID: payload})
        await eventually(lambda: self.heard.has(address, payload))

    async def relays(self, payloads: list[bytes], addresses: list[str] = RELAYS) -> None:
        """Each address relays ``payloads`` (copies of genuine frames, or forged) and never
        answers a connection."""
        for address in addresses:
            self.bz.set_connect_behaviour(address, hang=True)
            for payload in payloads:
                await self.advert(address, payload)


@pytest.fixture
def home_radio(run):
    def runner(body, **kw):
        async def main(bz: BlueZDouble) -> None:
            heard = Heard()
            kw.setdefault("connect_timeout_s", 1.0)
            radio = radio_for(heard, **kw)
            await radio.start()
            try:
                await body(bz, radio, Home(bz, heard))
            finally:
                await radio.stop()

        run(main, timeout=25)

    return runner


def test_relays_never_answering_do_not_hold_up_the_devices_own_acks(home_radio, logs) -> None:
    async def body(bz: BlueZDouble, radio, home: Home) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        sos = frame(7, device=1)
        await home.advert(BUTTON, sos)
        assert await radio.send_ack(BUTTON, ack(7, ACK_STORED))  # the device's own, first
        await home.relays([sos])  # live copies of its SOS from 24 addresses
        t0 = time.monotonic()
        relayed = [
            asyncio.create_task(radio.send_ack(r, ack(7, ACK_STORED, clock=i), own=False))
            for i, r in enumerate(RELAYS)
        ]
        await asyncio.sleep(0.05)
        # one worker per address with acks queued: two relays' (the button's is done), not 24
        assert ack_workers() == OTHERS_PER_DEVICE
        refused = [t for t in relayed if t.done()]
        assert len(refused) == len(RELAYS) - OTHERS_PER_DEVICE
        assert not any(t.result() for t in refused) and time.monotonic() - t0 < 0.5

        # the platform confirms, an operator answers, the device sends its next frame: each
        # ack reaches the device at once, while the relays' connects hang
        for a in (ack(7, ACK_DELIVERED, clock=1), ack(7, ACK_HELP, clock=2), ack(8, ACK_STORED)):
            t0 = time.monotonic()
            assert await radio.send_ack(BUTTON, a)
            assert time.monotonic() - t0 < 0.5  # was ~8 s: behind 24 relays' 1 s connects
            assert got[-1] == a
        assert not any(t.done() for t in relayed if t not in refused)  # still connecting
        assert await asyncio.gather(*relayed) == [False] * len(RELAYS)
        relay_connects = [m for m, p, _ in bz.call_log if m == "Connect" and "5A_00" in p]
        assert len(relay_connects) == OTHERS_PER_DEVICE

        # a second wave from fresh addresses: two queued again, the rest refused, and still
        # not one log per advert
        wave = [f"5A:00:00:01:00:{i:02X}" for i in range(4)]
        await home.relays([frame(8, device=1)], wave)
        results = await asyncio.gather(
            *(radio.send_ack(r, ack(8, ACK_STORED), own=False) for r in wave)
        )
        assert results == [False] * len(wave)
        assert len(refusal_logs(logs)) == 1
        assert "device 00000001" in refusal_logs(logs)[0]

    home_radio(body)


def test_relays_of_many_devices_and_forged_claims_are_bounded_in_all(home_radio, logs) -> None:
    """Relays that also claim other devices (forged adverts) are no one device's: they fall
    under the bound on all addresses, never under a device's own."""

    async def body(bz: BlueZDouble, radio, home: Home) -> None:
        got: list[bytes] = []
        bz.on_write(PIR, got.append)
        sos = frame(3, device=1)
        await home.advert(BUTTON, sos)
        await home.advert(PIR, frame(40, device=2))
        bz.set_connect_behaviour(BUTTON, hang=True)  # the button itself is out of range now
        button = asyncio.create_task(radio.send_ack(BUTTON, ack(3, ACK_STORED)))
        await home.relays([sos, frame(3, device=0x77)])
        relayed = [
            asyncio.create_task(radio.send_ack(r, ack(3, ACK_STORED), own=False)) for r in RELAYS
        ]
        await asyncio.sleep(0.05)
        assert ack_workers() <= 1 + OTHERS_TOTAL
        assert sum(t.done() for t in relayed) == len(RELAYS) - OTHERS_TOTAL
        # the relays hold at most 2 of the 3 slots, the hanging button the third: the PIR's
        # own ack waits for whichever ends first, not for the relays' queue
        t0 = time.monotonic()
        assert await radio.send_ack(PIR, ack(40, ACK_STORED))
        assert time.monotonic() - t0 < 0.8  # was ~4 s
        assert got == [ack(40, ACK_STORED)]
        assert await asyncio.gather(button, *relayed) == [False] * (1 + len(RELAYS))
        assert len(refusal_logs(logs)) == 1 and "claims no one device" in refusal_logs(logs)[0]

    home_radio(body, connect_timeout_s=0.5)


def test_an_address_claiming_two_devices_is_never_a_devices_own(home_radio) -> None:
    """Even if the pipeline took it for the device's own address (it carried the device's new
    frame first), a relay that also sent forged adverts gets no reserved slot: with two
    slots, the second one stays free for the device's own ack."""

    async def body(bz: BlueZDouble, radio, home: Home) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        forged, relayed = frame(5, device=0x77), frame(5, device=1)
        await home.relays([relayed, forged], RELAYS[:2])
        await home.advert(BUTTON, frame(6, device=1))
        first = [
            asyncio.create_task(radio.send_ack(r, ack(5, ACK_STORED), own=True)) for r in RELAYS[:2]
        ]
        await asyncio.sleep(0.1)
        connects = [p for m, p, _ in bz.call_log if m == "Connect"]
        assert len(connects) == 1  # one slot for other addresses, the other kept
        t0 = time.monotonic()
        assert await radio.send_ack(BUTTON, ack(6, ACK_STORED))
        assert time.monotonic() - t0 < 0.3
        assert await asyncio.gather(*first) == [False, False]

    home_radio(body, max_connections=2, connect_timeout_s=0.5)


def test_the_devices_own_address_is_the_one_the_pipeline_says() -> None:
    addresses = Addresses(clock=time.monotonic)
    addresses.owned(BUTTON, 1)  # the device's last new frame came from the button
    assert addresses.is_current(BUTTON, 1) and not addresses.is_current(RELAYS[0], 1)
    addresses.owned(PIR, 1)  # its next new frame came from elsewhere
    assert addresses.is_current(PIR, 1) and not addresses.is_current(BUTTON, 1)
    addresses.owned(RELAYS[1], None)  # claims no one device: never anyone's own
    assert not addresses.is_current(RELAYS[1], None)
    queued = [(PIR, 1), (RELAYS[0], 1)]
    assert addresses.admit(PIR, 1, queued * 9)  # the device's own: always
    assert addresses.admit(RELAYS[2], 1, queued)
    two = queued + [(RELAYS[3], 1)]
    assert not addresses.admit(RELAYS[2], 1, two)  # two others of device 1 already
    assert addresses.admit(RELAYS[2], 2, two)  # another device's
    anyone = [(r, None) for r in RELAYS[:OTHERS_TOTAL]]
    assert not addresses.admit(RELAYS[-1], 2, anyone)  # the bound on all


def test_replays_acked_first_never_make_a_replayer_the_devices_own(home_radio, logs) -> None:
    """Review demo (test_restart_relay_first): after a hub restart, a recording of a stored
    SOS replayed from 3 addresses was acknowledged before the device's own retry. The radio
    took the first of them for the device's current address (the first ack of the device's
    newest frame), queued the other 2 and then refused the device's own ack at once, for
    good: a device retrying an alarm sends no new frame. Now only the pipeline's ``own``
    marks the device's address: the replayers are others, the device's ack is written at
    once while their connects hang."""

    async def body(bz: BlueZDouble, radio, home: Home) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        sos = frame(7, device=1)
        await home.relays([sos], RELAYS[:3])
        await home.advert(BUTTON, frame(8, device=1))  # its retry (other bytes: attempt, age)
        relayed = [
            asyncio.create_task(radio.send_ack(r, ack(7, ACK_STORED), own=False))
            for r in RELAYS[:3]
        ]
        await asyncio.sleep(0.05)
        assert [t.done() for t in relayed] == [False, False, True]  # the third refused
        t0 = time.monotonic()
        assert await radio.send_ack(BUTTON, ack(7, ACK_STORED), own=True)
        assert time.monotonic() - t0 < 0.5 and got == [ack(7, ACK_STORED)]
        assert await asyncio.gather(*relayed) == [False] * 3

    home_radio(body, max_connections=2)


def test_device_book_claims() -> None:
    book = DeviceBook(time.monotonic, 30.0)
    device = object()
    book.saw(BUTTON, device, frame(1, device=1), 0.0)  # type: ignore[arg-type]
    book.saw(BUTTON, device, frame(2, device=1), 0.0)  # type: ignore[arg-type]
    assert book.claim(BUTTON) == 1 and book.claim(PIR) is None
    book.saw(BUTTON, device, frame(3, device=5), 0.0)  # type: ignore[arg-type]
    book.saw(BUTTON, device, frame(4, device=1), 0.0)  # type: ignore[arg-type]
    assert book.claim(BUTTON) is None  # claimed two: for as long as bluetoothd knows it
    book.saw(PIR, device, bytes(24), 0.0)  # type: ignore[arg-type]
    assert book.claim(PIR) is None  # not a carebeacon frame


def test_slots_serve_a_devices_own_address_first_and_keep_one_for_it() -> None:
    async def main() -> None:
        own = {"OWN1", "OWN2"}
        slots = Slots(3, lambda a: a in own)
        release: dict[str, asyncio.Event] = {}
        order: list[str] = []

        async def use(address: str) -> None:
            release[address] = asyncio.Event()
            async with slots.hold(address):
                order.append(address)
                await release[address].wait()

        others = [asyncio.create_task(use(f"R{i}")) for i in range(4)]
        await asyncio.sleep(0)
        assert order == ["R0", "R1"] and slots.used == 2  # the third slot is kept
        mine = asyncio.create_task(use("OWN1"))
        await asyncio.sleep(0)
        assert order[-1] == "OWN1" and slots.used == 3
        later = asyncio.create_task(use("OWN2"))  # queued after R2 and R3, served before them
        await asyncio.sleep(0)
        others[2].cancel()  # a waiter that goes away leaves the queue
        await asyncio.sleep(0)
        release["R0"].set()
        await asyncio.sleep(0.01)
        assert order == ["R0", "R1", "OWN1", "OWN2"]
        release["OWN1"].set()
        await asyncio.sleep(0.01)
        assert order[-1] == "R3"
        for event in release.values():
            event.set()
        await asyncio.gather(*others, mine, later, return_exceptions=True)
        assert slots.used == slots.others == 0

    asyncio.run(main())


def test_a_slot_granted_to_a_cancelled_waiter_is_given_back() -> None:
    async def main() -> None:
        slots = Slots(1, lambda a: False)
        held = asyncio.Event()

        async def use(address: str, hold: asyncio.Event | None) -> None:
            async with slots.hold(address):
                if hold is not None:
                    await hold.wait()

        first = asyncio.create_task(use("A", held))
        await asyncio.sleep(0)
        second = asyncio.create_task(use("B", None))
        await asyncio.sleep(0)
        held.set()
        await asyncio.sleep(0)  # A releases: B is granted the slot...
        second.cancel()  # ...and cancelled before it runs
        await asyncio.gather(first, second, return_exceptions=True)
        assert slots.used == slots.others == 0

    asyncio.run(main())


def test_an_address_that_becomes_its_devices_own_takes_the_free_slot_at_once(run) -> None:
    """Review finding: a device's address queued as another's (its frame reached the hub first
    through a relay) stayed queued when its next frame made it the device's own, until some
    other connection ended, though a slot was free: behind two relays that never answer, the
    whole connect timeout."""
    r0, r1, r2 = RELAYS[:3]

    async def body(bz: BlueZDouble) -> None:
        heard = Heard()
        radio = radio_for(heard, connect_timeout_s=5.0, max_connections=3)
        await radio.start()
        try:
            async def advert(address: str, payload: bytes) -> None:
                await bz.advertise(address, {COMPANY_ID: payload})
                await eventually(lambda: heard.has(address, payload))

            for r in (r1, r2):  # device 2's relays hold the two slots other addresses may use
                bz.set_connect_behaviour(r, hang=True)
                await advert(r, frame(5, device=2))
            hung = [asyncio.create_task(radio.send_ack(r, ack(5, ACK_STORED), own=False))
                    for r in (r1, r2)]
            await eventually(lambda: bz.calls["Connect"] >= 2)
            await advert(r0, frame(8, device=1))  # device 1's frame 8 came through a relay first
            assert await radio.send_ack(r0, ack(8, ACK_STORED), own=True)
            await advert(BUTTON, frame(8, device=1))
            copy = asyncio.create_task(radio.send_ack(BUTTON, ack(8, ACK_STORED), own=False))
            await asyncio.sleep(0.1)  # queued: the other addresses' slots are taken
            await advert(BUTTON, frame(9, device=1))  # its next frame, from its own address
            assert await radio.send_ack(BUTTON, ack(9, ACK_STORED), own=True)
            assert not any(t.done() for t in hung), "served before the relays' connects ended"
            assert await copy
            await asyncio.gather(*hung)
        finally:
            await radio.stop()

    run(body, timeout=30)
