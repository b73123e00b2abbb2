"""The air of the simulated home: a private system bus with the BlueZ double, and devices.

    air = Air()                       private dbus-daemon + hil.sim.bluez.BlueZDouble, run on a
                                      background event loop ("air" thread)
    dev = air.device(0xA1B2, key)     a device: encodes frames with shared.frame.Codec, advertises
                                      them through the double (every retransmission differs:
                                      attempt and age change), retries on shared.retry.Retry until
                                      an ack it verified reaches the message's target status, and
                                      records every verified ack

The hub under test finds the double through DBUS_SYSTEM_BUS_ADDRESS = air.bus.address.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field

from hil.sim.bluez import BlueZDouble
from hil.sim.dbus_session import PrivateSystemBus
from hil.sim.wait import wait_for
from shared import frame as F
from shared.retry import Retry
from shared.ticks import ticks_diff

HUB = "hub-a"
# A compressed retry schedule (the firmware's shape: burst, then doubling to a ceiling), so a
# test does not wait out 60 s backoffs; shared.retry.Retry decides every transmission.
FAST_RETRY = dict(burst=3, burst_ms=300, first_ms=600, max_ms=1500, jitter_pct=10)


def ms() -> int:
    return int(time.monotonic() * 1000) & 0x3FFFFFFF  # ESP32-style ticks


# -- the air: private system bus + BlueZ double ------------------------------------------------
class Air:
    """A private dbus-daemon with the BlueZ double on it, driven from a background loop."""

    def __init__(self, **double_options):
        self.bus = PrivateSystemBus()
        self.bus.start()  # from the main thread: the daemon dies with the thread that forked it
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="air", daemon=True)
        self._thread.start()
        self.double = BlueZDouble(self.bus.address, **double_options)
        self.devices: list[SimDevice] = []
        self.call(self.double.start())

    def call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def device(self, dev_id: int, key: bytes, **kw) -> SimDevice:
        d = SimDevice(self, dev_id, key, **kw)
        self.devices.append(d)
        return d

    def feed(self, plan: list[tuple[SimDevice, int]], gap_s: float = 0.0, *,
             target: int = F.ACK_STORED, retries: bool = False) -> list[tuple[SimDevice, int]]:
        """New messages in the order of `plan` [(device, message type)], `gap_s` apart;
        returns [(device, seq)]."""
        async def run():
            out = []
            for dev, mtype in plan:
                out.append((dev, await dev._new(mtype, 0, target, 0, retries)))
                if gap_s:
                    await asyncio.sleep(gap_s)
            return out
        return self.call(run(), 60 + len(plan) * gap_s)

    def stream(self, plan: dict[SimDevice, tuple[int, int]], *, until: int = F.ACK_STORED,
               timeout: float = 120.0) -> list[tuple[SimDevice, int]]:
        """Each device sends `n` messages of its type {device: (n, mtype)}, like firmware that
        holds its next message back until the previous one is acknowledged `until`; retries
        on its Retry schedule meanwhile. Devices run concurrently; returns [(device, seq)]."""
        async def one(dev: SimDevice, n: int, mtype: int) -> list[tuple[SimDevice, int]]:
            out = []
            for _ in range(n):
                seq = await dev._new(mtype, 0, until, 0, True)
                out.append((dev, seq))
                while dev.msgs[seq].status < until:
                    dev._acked.clear()
                    await dev._acked.wait()
            return out

        async def run():
            parts = await asyncio.gather(*(one(d, n, t) for d, (n, t) in plan.items()))
            return [x for p in parts for x in p]
        return self.call(run(), timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            for d in self.devices:
                d.close()
            self.call(self.double.stop(), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.bus.stop()


@dataclass
class Msg:
    seq: int
    mtype: int
    arg: int
    at: int  # tick of the event: frames carry its age
    target: int  # the ack status that ends retrying
    retry: Retry
    status: int = 0
    sent: list[float] = field(default_factory=list)  # monotonic time of each transmission


class SimDevice:
    """One carebeacon device on the air. Everything runs on the Air's loop; the test thread
    calls send()/transmit_again() and reads the records (lists only appended to)."""

    def __init__(self, air: Air, dev_id: int, key: bytes, *, address: str | None = None,
                 rssi: int = -63, retry: dict | None = None, start_seq: int = 1):
        self.air, self.id, self.rssi = air, dev_id, rssi
        self.address = address or "C8:2E:%02X:%02X:%02X:%02X" % tuple(dev_id.to_bytes(4, "big"))
        self.codec = F.Codec(dev_id, key)
        self.retry_cfg = retry if retry is not None else FAST_RETRY
        self.next_seq = start_seq
        self.msgs: dict[int, Msg] = {}
        self.acks: list[tuple[float, int, int]] = []  # (monotonic time, seq, status), verified
        self.settings: list[tuple[int, int, int]] = []  # (seq, setting id, value) of those acks
        self.bad_acks = 0  # writes that failed verification (forged / for another device)
        self.stale_acks = 0  # for a seq this device never sent (not verified: changes nothing)
        self.transmissions = 0
        self._wake = asyncio.Event()
        self._acked = asyncio.Event()  # set on every verified ack
        self._closed = False
        air.double.on_write(self.address, self._on_write)
        self._task = asyncio.run_coroutine_threadsafe(self._run(), air.loop)

    # -- test thread API ------------------------------------------------------------------
    def send(self, mtype: int = F.T_SOS, arg: int = 0, *, target: int = F.ACK_HELP,
             age_ms: int = 0, retries: bool = True) -> int:
        """A new message (new seq); transmitted now and retried until `target` is verified."""
        fut = asyncio.run_coroutine_threadsafe(
            self._new(mtype, arg, target, age_ms, retries), self.air.loop)
        return fut.result(5)

    def send_many(self, n: int, mtype: int = F.T_SOS, **kw) -> list[int]:
        return [seq for _, seq in self.air.feed([(self, mtype)] * n, **kw)]

    def transmit_again(self, seq: int) -> None:
        """One more retransmission of `seq` now, whatever the retry schedule says."""
        asyncio.run_coroutine_threadsafe(
            self._transmit(self.msgs[seq]), self.air.loop).result(5)

    def statuses(self, seq: int) -> list[int]:
        return [s for _, q, s in list(self.acks) if q == seq]

    def status(self, seq: int) -> int:
        return max(self.statuses(seq), default=0)

    def wait_status(self, seq: int, status: int, timeout: float = 10.0) -> None:
        wait_for(lambda: self.status(seq) >= status, timeout,
                 f"device {self.id:08x} seq {seq}: ack status {status} (has {self.status(seq)})")

    def ref(self, seq: int, hub: str = HUB) -> str:
        return f"{hub}:{self.id:08x}:{seq}"

    def close(self) -> None:
        self._closed = True
        self.air.loop.call_soon_threadsafe(self._wake.set)

    # -- on the air loop ------------------------------------------------------------------
    async def _new(self, mtype, arg, target, age_ms, retries) -> int:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        r = Retry(**self.retry_cfg)
        r.start(ms(), seed=(self.id ^ seq) & 0xFFFF)
        m = Msg(seq, mtype, arg, (ms() - age_ms) & 0x3FFFFFFF, target, r)
        self.msgs[seq] = m
        await self._transmit(m)
        r.sent(ms())
        if not retries:
            r.stop()
        self._wake.set()
        return seq

    async def _transmit(self, m: Msg) -> None:
        now = ms()
        data = self.codec.encode(bytearray(F.FRAME_LEN), m.seq, m.mtype, m.arg,
                                 max(0, ticks_diff(now, m.at)), len(m.sent))
        adv = F.build_adv(bytearray(F.ADV_LEN), data)
        m.sent.append(time.monotonic())
        self.transmissions += 1
        await self.air.double.advertise_raw(self.address, bytes(adv), rssi=self.rssi)

    async def _run(self) -> None:
        while not self._closed:
            now = ms()
            wait = 0.5
            for m in list(self.msgs.values()):
                if not m.retry.active:
                    continue
                if m.retry.due(now):
                    await self._transmit(m)
                    m.retry.sent(now)
                if m.retry.active:
                    wait = min(wait, max(0.0, ticks_diff(m.retry.next_at, ms()) / 1000))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _on_write(self, data: bytes) -> None:
        # As the firmware does (firmware/apps/core.py): find the message under the claimed
        # number, then verify the tag with that message's type (the tag covers it).
        try:
            m = self.msgs.get(F.peek_ack_seq(data))
            if m is None:
                self.stale_acks += 1  # nothing pending under it: changes nothing, unverified
                return
            ack = self.codec.verify_ack(data, m.mtype)
        except F.FrameError:
            self.bad_acks += 1
            return
        if ack.setting != F.S_NONE:  # first: a test that saw the ack sees its setting
            self.settings.append((ack.seq, ack.setting, ack.value))
        self.acks.append((time.monotonic(), ack.seq, ack.status))
        m.status = max(m.status, ack.status)
        self._acked.set()
        if m.status >= m.target:
            m.retry.stop()


