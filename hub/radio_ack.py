"""Acknowledgements over GATT: connect, write 20 bytes with response, disconnect.

Rules from the ble-hub notes (failure modes 5 and 6), each enforced here:
- connect to a BLEDevice the running scanner produced, never to an address string (that makes
  bleak run a hidden second scan, which gets InProgress or wedges the stack);
- an outer timeout around connect, write and disconnect (radio_bluez.bounded), so a wedged
  D-Bus cannot hold a caller forever;
- a fresh BleakClient per attempt, and at most one connection in flight per device: the next
  attempt to a device only after the previous disconnect has finished;
- a budget of connection slots (adapters manage ~5-7 links, and scanning shares the radio),
  one of them kept for acks to a device's own address, and a bound on the addresses with acks
  queued, so that relayed adverts cannot starve a device's own acks (hub/radio_ack_limits.py);
- after a failure, back off per error class before connecting to that device again.

Acknowledgements are coalesced per device. A device retransmits its frame until it has the
acknowledgement, and the hub answers every copy it hears, so one frame can bring dozens of
acks for the same device within a second. One worker per device writes them one at a time;
while one is in flight, the acks waiting for that device are kept at most one per frame
(sequence number), the newest replacing the one waiting:

- an ack waiting for a frame is replaced by a newer one for that frame: a higher status, or
  the same status made later (fresher clock, current setting); an older one (lower status)
  joins the waiting one instead;
- an ack with a lower status than the one being written for that frame is never written
  after it: it joins the write in flight;
- once a write succeeds, a waiting ack for that frame whose status is not above the written
  one is dropped unwritten (the device ignores an ack that does not raise the frame's status:
  firmware/apps/core.py), and covered by the write;
- after a failure, the waiting acks are still written, after the backoff: a timeout does not
  lose the newest status;
- acks for different frames of one device are all written, one connection each, in the order
  their frames were first acknowledged (the device has several messages in flight, each
  needing its own ack).

A caller whose ack was merged into another gets the result of the ack that was written in
its place: True if that one was written and covers it (same frame, status at least as high,
and the same setting and value unless the caller's ack carried no setting). That keeps the
pipeline's ``ack_written(ok)`` honest: a setting is marked as received only if the device got
an ack carrying it.

A send to a device that is backing off and has nothing in flight or waiting is refused at
once, as is one to a device never heard or forgotten, one beyond the bound on addresses, or
one while the radio is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import (
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
)

from hub.radio_ack_limits import Addresses, Claim, Slots
from hub.radio_bluez import IN_PROGRESS, NOT_READY, bounded, describe
from hub.radio_book import DeviceBook
from shared.frame import ACK_LEN

__all__ = ["ACK_UUID", "BACKOFF_S", "SERVICE_UUID", "AckSender", "covers"]

log = logging.getLogger("carebeacon.radio")


SERVICE_UUID = "ac159b7a-7476-4193-ac7d-9e0b08be16a2"  # docs/protocol.md "Transport"
ACK_UUID = "ce565160-994a-43fe-8beb-80aae4f11aa5"  # acknowledgement characteristic (write)


# error class -> (first wait, longest wait) in seconds before connecting to that device again.
# Devices retry alarms after 0.6 s, then from 2 s doubling to 60 s (docs/protocol.md "Retry
# schedule"), so the waits stay below their retry gaps: we back off to spare the radio, not to
# skip a retransmission we could have answered.
BACKOFF_S: dict[str, tuple[float, float]] = {
    "timeout": (2.0, 30.0),  # out of range or asleep: every attempt holds a slot for the timeout
    "connect_failed": (0.5, 10.0),  # aborted links: usually interference (Wi-Fi coexistence)
    "busy": (0.5, 5.0),  # bluetoothd busy with another connect to it
    "write_failed": (0.5, 10.0),  # the device refused the write
}


@dataclass
class _Backoff:
    error: str
    failures: int
    until: float


def _seq(ack: bytes) -> int:
    return int.from_bytes(ack[1:5], "big")  # docs/protocol.md "Acknowledgement": bytes 1-4


def _status(ack: bytes) -> int:
    return ack[5]  # 1 STORED < 2 DELIVERED < 3 HELP (shared/frame.py ACK_*)


def covers(written: bytes, ack: bytes) -> bool:
    """``written`` reaching the device serves ``ack``'s caller: same frame, a status at least
    as high, and ``ack``'s setting (byte 9, value bytes 10-11) too if it carried one."""
    return (
        written[1:5] == ack[1:5]
        and _status(written) >= _status(ack)
        and (ack[9] == 0 or written[9:12] == ack[9:12])
    )


@dataclass(eq=False)
class _Pending:
    """One ack to write for one frame of a device, and everyone waiting for it. ``done``
    resolves to the bytes written, None if nothing was, or another _Pending that took over
    (its outcome is theirs)."""

    data: bytes
    done: asyncio.Future[Any]

    @property
    def seq(self) -> int:
        return _seq(self.data)

    @property
    def status(self) -> int:
        return _status(self.data)


@dataclass(eq=False)
class _Device:
    claim: Claim  # the device the address's adverts claimed when its first ack was queued
    waiting: dict[int, _Pending] = field(default_factory=dict)  # seq -> ack, first-queued first
    current: _Pending | None = None  # being written


class AckSender:
    """The send_ack half of Radio. ``lookup(address)`` gives the scanner's BLEDevice or a reason
    why there is none; ``adapter()`` the adapter name in use; ``book`` (Radio's DeviceBook)
    which device each address claims, and forgets an address that keeps failing."""

    def __init__(
        self,
        *,
        lookup: Callable[[str], tuple[BLEDevice | None, str]],
        active: Callable[[], bool],
        adapter: Callable[[], str | None],
        book: DeviceBook,
        connect_timeout_s: float,
        max_connections: int,
        op_timeout_s: float,
        tasks: set[asyncio.Task[Any]],
        clock: Callable[[], float],
    ) -> None:
        self._book = book
        self._lookup = lookup
        self._active = active
        self._adapter = adapter
        self.connect_timeout_s = connect_timeout_s
        self.op_timeout_s = op_timeout_s
        self.backoff_s = dict(BACKOFF_S)  # per instance, so tests can shorten it
        self._tasks = tasks  # the per-device workers join it: Radio.stop() waits for them
        self._connecting: set[asyncio.Task[Any]] = set()  # what abort() cancels
        self._clock = clock
        self._addresses = Addresses(clock)  # each device's own address; who may queue
        self._slots = Slots(max_connections, self._mine, clock)
        self.echo_of_ours = self._slots.connected_lately  # (address): Radio's advert filter
        self._devices: dict[str, _Device] = {}  # devices with an ack in flight or waiting
        self._backoff: dict[str, _Backoff] = {}
        self._wake: asyncio.Event | None = None  # set by abort(): workers stop backing off

    async def send(self, address: str, data: bytes, *, own: bool = True) -> bool:
        """Radio.send_ack. ``own``: ``address`` is the device's own (the pipeline says so: its
        last new frame came from there); it becomes the device's current address. False: a
        relay's or replayer's, bounded (hub/radio_ack_limits.py). The daemon always says."""
        address = address.upper()
        if not isinstance(data, bytes | bytearray) or len(data) != ACK_LEN:
            raise ValueError(f"an acknowledgement is {ACK_LEN} bytes")  # a caller bug, not radio
        data = bytes(data)
        if not self._active():
            log.warning("ack to %s not sent: radio not running", address)
            return False
        claim = self._book.claim(address)
        if own:
            self._addresses.owned(address, claim)
            self._slots.regrant()  # its acks already waiting may take a free slot now
        dev = self._devices.get(address)
        if dev is None:
            reason = self._refuse(address)
            if reason is not None:
                log.warning("ack to %s not sent: %s", address, reason)
                return False
            queued = [(a, d.claim) for a, d in self._devices.items()]
            if not self._addresses.admit(address, claim, queued):
                return False  # logged there, once in a while
            dev = self._devices[address] = _Device(claim)
            worker = asyncio.create_task(
                self._work(address, dev), name=f"carebeacon.radio.ack.{address}"
            )
            self._tasks.add(worker)
            worker.add_done_callback(self._tasks.discard)
        entry = self._enqueue(dev, data)
        outcome = await asyncio.shield(entry.done)
        while isinstance(outcome, _Pending):  # merged into a newer ack for the same frame
            outcome = await asyncio.shield(outcome.done)
        return outcome is not None and covers(outcome, data)

    def _mine(self, address: str) -> bool:
        """Is ``address`` (with acks queued) its device's own?"""
        dev = self._devices.get(address)
        return dev is not None and self._addresses.is_current(address, dev.claim)

    def _enqueue(self, dev: _Device, data: bytes) -> _Pending:
        """Where ``data`` goes: a new waiting entry, or one it replaces or joins."""
        seq, status = _seq(data), _status(data)
        entry = dev.waiting.get(seq)
        if entry is not None:
            if status >= entry.status:
                entry.data = data  # the newest ack for this frame wins; its place in line stays
            return entry
        cur = dev.current
        if cur is not None and cur.seq == seq and status < cur.status:
            return cur  # never write an older status after a newer one for the same frame
        entry = _Pending(data, asyncio.get_running_loop().create_future())
        # an exception set for callers that went away must not be logged as never retrieved
        entry.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        dev.waiting[seq] = entry
        return entry

    async def _work(self, address: str, dev: _Device) -> None:
        """Write ``dev``'s waiting acks one at a time until none is left."""
        try:
            while dev.waiting:
                if not self._active():
                    log.warning(
                        "ack to %s not sent: radio stopped (%d waiting)", address, len(dev.waiting)
                    )
                    break
                reason = self._refuse(address)
                if reason is not None:  # the previous attempt failed; these acks were waiting
                    log.info("acks to %s wait: %s", address, reason)
                    await self._pause(self._backoff[address].until - self._clock())
                    continue
                seq = next(iter(dev.waiting))
                entry = dev.current = dev.waiting.pop(seq)
                try:
                    ok = await self._send(address, entry.data)
                except Exception as e:  # a programming error: the callers see it
                    entry.done.set_exception(e)
                    continue
                except BaseException:  # cancelled (Radio.stop() past its deadline)
                    entry.done.set_result(None)
                    raise
                finally:
                    dev.current = None
                if not entry.done.done():
                    self._settle(dev, entry, ok)
        finally:
            # no await from the loop's last check to here: send() cannot add to a finished
            # worker's device
            if self._devices.get(address) is dev:
                del self._devices[address]
            for entry in dev.waiting.values():
                if not entry.done.done():
                    entry.done.set_result(None)
            dev.waiting.clear()

    def _settle(self, dev: _Device, entry: _Pending, ok: bool) -> None:
        waiting = dev.waiting.get(entry.seq)
        if ok:
            entry.done.set_result(entry.data)
            if waiting is not None and waiting.status <= entry.status:
                # the device ignores an ack that does not raise the frame's status: drop it
                del dev.waiting[entry.seq]
                waiting.done.set_result(entry.data)
        elif waiting is not None:
            entry.done.set_result(waiting)  # the newer ack for this frame answers for this one
        else:
            entry.done.set_result(None)

    async def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``; abort() cuts it short."""
        if self._wake is None:
            self._wake = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._wake.wait()

    async def _send(self, address: str, data: bytes) -> bool:
        """One attempt: look the device up, connect, write, disconnect; log why not."""
        device, reason = self._lookup(address)
        if device is None:
            log.warning("ack to %s not sent: %s", address, reason)
            return False
        async with self._slots.hold(address):
            error = await self._attempt(address, device, data)
        if error is None:
            self._backoff.pop(address, None)
            return True
        cls, reason = error
        wait = self._back_off(address, cls)
        log.warning(
            "ack to %s failed (%s): %s; next attempt in >= %.1f s", address, cls, reason, wait
        )
        return False

    def _refuse(self, address: str) -> str | None:
        b = self._backoff.get(address)
        if b is not None:
            left = b.until - self._clock()
            if left > 0:
                return f"backing off after {b.error} ({left:.1f} s left)"
        return None

    def _back_off(self, address: str, cls: str) -> float:
        if cls not in self.backoff_s:
            return 0.0  # e.g. not_found / adapter: nothing to gain by waiting on this device
        first, cap = self.backoff_s[cls]
        prev = self._backoff.get(address)
        failures = prev.failures + 1 if prev is not None else 1
        wait = min(cap, first * 2 ** (failures - 1))
        self._backoff[address] = _Backoff(cls, failures, self._clock() + wait)
        return wait

    def abort(self) -> None:
        """Radio.stop(): cancel connects in progress (a hung one holds its caller for up to
        connect_timeout_s) and wake the workers waiting out a backoff (they find the radio
        stopped and answer their callers False); writes and disconnects are left to finish,
        each bounded."""
        for task in list(self._connecting):
            task.cancel()
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.set()

    async def _attempt(
        self, address: str, device: BLEDevice, data: bytes
    ) -> tuple[str, str] | None:
        """One connect-write-disconnect; None on success, else (error class, reason)."""
        if not self._active():  # Radio.stop() ran while we waited for a slot
            return "stopped", "radio stopped"
        adapter = self._adapter()
        client = BleakClient(
            device,
            services=[SERVICE_UUID],
            timeout=self.connect_timeout_s,
            bluez={"adapter": adapter} if adapter else {},
        )
        try:
            connect = asyncio.ensure_future(client.connect())
            self._connecting.add(connect)
            connect.add_done_callback(self._connecting.discard)
            try:
                await bounded(connect, self.connect_timeout_s, "connect", self._tasks)
            except Exception as e:
                return self._connect_error(address, e)
            try:
                await bounded(
                    client.write_gatt_char(ACK_UUID, data, response=True),
                    self.op_timeout_s,
                    "ack write",
                    self._tasks,
                )
            except TimeoutError as e:
                return "timeout", describe(e)
            except BleakCharacteristicNotFoundError:
                return "write_failed", "no acknowledgement characteristic (not carebeacon?)"
            except BleakError as e:
                return "write_failed", describe(e)
            except (OSError, EOFError) as e:  # our D-Bus connection died (dbus-daemon restart)
                return "write_failed", f"D-Bus connection lost during the write: {describe(e)}"
            return None
        finally:
            # also after a failed connect: bleak's own cleanup may not have run if we cancelled it
            try:
                await bounded(client.disconnect(), self.op_timeout_s, "disconnect", self._tasks)
            except Exception as e:
                log.warning("disconnect from %s: %s", address, describe(e))

    def _connect_error(self, address: str, e: Exception) -> tuple[str, str]:
        if not self._active():
            return "stopped", "radio stopped during connect"
        if isinstance(e, TimeoutError):
            return "timeout", describe(e)  # "connect: no answer within ..."
        if isinstance(e, BleakDeviceNotFoundError) or (
            isinstance(e, BleakError)
            and not isinstance(e, BleakDBusError)
            and "not found" in str(e)
        ):
            # bluetoothd dropped the device object (no advert for 30 s, or a power cycle):
            # only a new advert brings it back
            self._book.forget(address)
            return "not_found", f"connect: {describe(e)}"
        if isinstance(e, BleakDBusError) and e.dbus_error == IN_PROGRESS:
            return "busy", f"connect: {describe(e)}"
        if isinstance(e, BleakDBusError) and e.dbus_error == NOT_READY:
            return "adapter", f"connect: adapter not ready ({describe(e)})"
        if isinstance(e, BleakError | OSError | EOFError):
            return "connect_failed", f"connect: {describe(e)}"
        raise e  # a programming error: let it surface
