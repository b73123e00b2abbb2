"""The hub core when the platform's broker refuses its events (PUBACK 0x10 "no matching
subscribers" while the platform's consumer is away, 0x87 from the ACL): one `uplink_rejected`
fault per reason code while it lasts, never a fault about the refused fault event itself (that
was an endless loop: hundreds of stored events a second), one log line, the refused alarm kept
pending and retried, its device never told DELIVERED; and the restoral once all went through.

The first tests run the real core, store and uplink against mosquitto on one asyncio loop (as
the daemon does); the core's clock is a fake one, so retries come when the test says."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from pipeline_testing import Home
from uplink_testing import Client, config

from hub.pipeline_outbox import REFUSED_ALARM_RETRY_MS, REFUSED_RETRY_MS
from hub.uplink import Uplink
from hub.uplink_pubacks import Rejection
from shared import frame as F

pytestmark = pytest.mark.timeout(60)
BUTTON = 0xA1B2


def _stored(home) -> list[dict]:
    """Every event in the store (payloads), oldest first."""
    rows = home.store._db.execute("SELECT payload_json FROM events ORDER BY id").fetchall()
    return [json.loads(r[0]) for r in rows if r[0]]


def _faults(home, type_: str = "fault") -> list[dict]:
    return [
        e for e in _stored(home) if e["type"] == type_ and e["fault"]["name"] == "uplink_rejected"
    ]


def _loud(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


class Rig:
    """`Home` (the core, the real store, the devices' codecs) with the real uplink in place of
    its recorder; `cert`: whose client certificate the uplink presents (another hub's: the
    ACL refuses this hub's topics with 0x87)."""

    def __init__(self, broker, tmp_path, schemas, cert: str = "hub-a"):
        self.home = Home(tmp_path, schemas)
        self.loop = asyncio.get_running_loop()
        core = self.home.core
        self.uplink = Uplink(
            config(broker, cert),
            loop=self.loop,
            on_delivered=core.on_delivered,
            on_rejected=core.on_rejected,
            on_connected=core.on_connected,
            on_disconnected=core.on_disconnected,
        )
        core.publisher = self.uplink

    async def start(self) -> Rig:
        self.uplink.start()
        await self.until(lambda: self.uplink.connected)
        await asyncio.sleep(0.1)  # on_connected has run
        return self

    async def until(self, predicate, timeout: float = 5.0, what: str = "condition") -> None:
        deadline = self.loop.time() + timeout
        while not predicate():
            if self.loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    async def later(self, ms: int, settle: float = 0.5) -> None:
        """The core's clock moves on `ms`; a tick; the PUBACKs it causes come back."""
        self.home.clock.advance(ms)
        self.home.core.tick()
        await asyncio.sleep(settle)

    def close(self) -> None:
        self.uplink.close()
        self.home.store.close()


@pytest.mark.parametrize(
    ("case", "code"), [("no_subscriber", 0x10), ("not_authorized", 0x87)]
)
def test_refused_events_raise_one_fault_and_no_loop(broker, tmp_path, schemas, caplog, case, code):
    caplog.set_level(logging.INFO, logger="carebeacon")

    async def run() -> None:
        platform = None
        if case == "not_authorized":  # someone listens: the refusal is the ACL's
            platform = await asyncio.to_thread(lambda: Client(broker).wait_ready())
        rig = await Rig(broker, tmp_path, schemas, "hub-b" if code == 0x87 else "hub-a").start()
        home = rig.home
        try:
            _, seq = home.send(BUTTON, F.T_SOS)
            await rig.until(lambda: rig.uplink.stats["rejected"] >= 2, what="refusals")
            await asyncio.sleep(1.0)  # the loop made ~100 fault events a second here
            assert home.store.stats()["events"] == 2  # the SOS and one fault
            (fault,) = _faults(home)
            assert f"0x{code:02X}" in fault["fault"]["text"]
            assert rig.uplink.stats["rejected"] == 2  # each offered once, refused once
            assert home.core.faults.keys() == {206}
            # the refused alarm: kept, its device still at "received", never DELIVERED
            sos = home.store.ref_for(BUTTON, seq)
            assert [e.ref for e in home.store.pending()] == [sos, fault["ref"]]
            assert home.last_ack(BUTTON).status == F.ACK_STORED
            # offered again later (the alarm sooner), refused again: nothing new
            for _ in range(3):
                await rig.later(REFUSED_RETRY_MS + 1_000)
            assert rig.uplink.stats["rejected"] == 8
            assert home.store.stats()["events"] == 2 and len(_faults(home)) == 1
            home.send(BUTTON, F.T_SOS, seq=seq, attempt=9)  # the device, still sending it
            assert home.last_ack(BUTTON).status == F.ACK_STORED
            # one line for it all, not two per event
            loud = _loud(caplog)
            assert len(loud) == 1 and "uplink_rejected" in loud[0], loud
        finally:
            rig.close()
            if platform:
                platform.close()

    asyncio.run(run())


def test_the_platform_back_gets_the_alarm_first_and_the_fault_clears(broker, tmp_path, schemas):
    async def run() -> None:
        rig = await Rig(broker, tmp_path, schemas).start()
        home, core = rig.home, rig.home.core
        platform = None
        try:
            _, seq = home.send(BUTTON, F.T_SOS)
            ref = home.store.ref_for(BUTTON, seq)
            await rig.until(lambda: rig.uplink.stats["rejected"] >= 2, what="refusals")
            platform = await asyncio.to_thread(lambda: Client(broker).wait_ready())
            # the alarm is offered again first (REFUSED_ALARM_RETRY_MS): delivered, and the
            # elder hears "help is being called"; the fault event still waits its turn
            await rig.later(REFUSED_ALARM_RETRY_MS + 1_000)
            await rig.until(lambda: ref in platform.refs(), what="the alarm on the platform")
            home.send(BUTTON, F.T_SOS, seq=seq, attempt=9)  # the device, still sending it
            assert home.last_ack(BUTTON).status == F.ACK_DELIVERED
            assert core.faults.keys() == {206}  # its own report is still refused-pending
            await rig.later(REFUSED_RETRY_MS)
            await rig.until(lambda: not home.store.pending(), what="everything delivered")
            assert core.faults == {}
            (fault,) = _faults(home)
            (restoral,) = _faults(home, "restoral")
            assert platform.refs() == [ref, fault["ref"], restoral["ref"]]
        finally:
            rig.close()
            if platform:
                platform.close()

    asyncio.run(run())


# -- the same rules with the recording uplink (no broker): the corners ----------------------------


def _reject(home, ref: str, code: int) -> None:
    home.core.on_rejected(ref, Rejection(code, {0x10: "No matching subscribers"}.get(code, "x")))


def test_one_fault_per_reason_code_and_none_for_its_own_refusal(home, caplog):
    caplog.set_level(logging.INFO, logger="carebeacon")
    refs = [home.store.ref_for(BUTTON, home.send(BUTTON, F.T_SOS)[1]) for _ in range(3)]
    for ref in refs:
        _reject(home, ref, 0x10)
    (fault,) = home.published("fault")
    _reject(home, fault["ref"], 0x10)  # the report of the refusals refused: no new fault
    _reject(home, fault["ref"], 0x97)  # ...not even for a new reason (logged once)
    _reject(home, fault["ref"], 0x97)
    assert len(home.published("fault")) == 1
    _reject(home, refs[0], 0x97)  # an alarm refused for a new reason: a fault for it
    faults = home.published("fault")
    assert len(faults) == 2 and "0x97" in faults[1]["fault"]["text"]
    _reject(home, faults[1]["ref"], 0x97)
    assert len(home.published("fault")) == 2
    assert len(_loud(caplog)) == 3  # 0x10 fault, 0x97 of the report, 0x97 fault
    for ref in [*refs, fault["ref"]]:
        home.core.on_delivered(ref)
    assert home.published("restoral") == [] and 206 in home.core.faults  # one is still refused
    home.core.on_delivered(faults[1]["ref"])
    (restoral,) = home.published("restoral")
    assert restoral["fault"]["name"] == "uplink_rejected" and home.core.faults == {}
    assert [e.ref for e in home.store.pending()] == [restoral["ref"]]


def test_a_refused_repeat_no_longer_repeated_lets_the_fault_clear(home):
    _, seq = home.send(BUTTON, F.T_SOS)
    ref = home.store.ref_for(BUTTON, seq)
    home.core.on_delivered(ref)
    home.clock.advance(home.core.alarm_repeat_ms)
    home.core.tick()  # repeated...
    _reject(home, ref, 0x87)  # ...and refused
    (fault,) = home.published("fault")
    home.core.on_delivered(fault["ref"])
    assert 206 in home.core.faults
    home.store.mark_help(ref, home.clock.wall_ms())  # an operator acknowledged it meanwhile
    home.core.stop_repeating(ref)
    home.clock.advance(REFUSED_RETRY_MS)
    home.core.tick()
    assert home.core.faults == {} and len(home.published("restoral")) == 1
    assert not home.core.backlog or not home.core.rejected  # nothing keeps the queue "hot"
