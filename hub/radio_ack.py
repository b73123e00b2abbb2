"""Acknowledgements over GATT: connect, write 20 bytes with response, disconnect.

Rules from the ble-hub notes (failure modes 5 and 6), each enforced here:
- connect to a BLEDevice the running scanner produced, never to an address string (that makes
  bleak run a hidden second scan, which gets InProgress or wedges the stack);
- an outer timeout around connect, write and disconnect (radio_bluez.bounded), so a wedged
  D-Bus cannot hold a caller forever;
- a fresh BleakClient per attempt, and the next attempt to a device only after the previous
  disconnect has finished (one lock per device);
- a budget of connection slots (adapters manage ~5-7 links, and scanning shares the radio);
- after a failure, back off per error class before connecting to that device again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import (
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
)

from hub.radio_bluez import IN_PROGRESS, NOT_READY, bounded, describe
from shared.frame import ACK_LEN

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


class DeviceBook:
    """The BLEDevice the scanner reported for each carebeacon device: what send_ack connects to
    (never an address string: notes, failure mode 5). Entries expire like bluetoothd's own
    device objects, 30 s after the last advert; a power cycle or adapter change clears them."""

    def __init__(self, clock: Callable[[], float], ttl_s: float) -> None:
        self._clock = clock
        self.ttl_s = ttl_s
        self._seen: dict[str, tuple[BLEDevice, float, bytes]] = {}  # device, when, last payload

    def saw(self, address: str, device: BLEDevice, payload: bytes, now: float) -> bool:
        """Record a report; False if it repeats the payload last reported for that address."""
        entry = self._seen.get(address)
        self._seen[address] = (device, now, payload)
        return entry is None or entry[2] != payload

    def get(self, address: str) -> tuple[BLEDevice | None, str]:
        entry = self._seen.get(address)
        if entry is None:
            return None, "no advert from it since the radio started or the adapter was reset"
        device, seen, _ = entry
        age = self._clock() - seen
        if age > self.ttl_s:
            del self._seen[address]
            return None, f"last advert {age:.0f} s ago: bluetoothd has forgotten it"
        return device, ""

    def forget(self, address: str) -> None:
        self._seen.pop(address, None)

    def clear(self) -> None:
        self._seen.clear()

    def prune(self, now: float) -> None:
        for address in [a for a, (_, seen, _) in self._seen.items() if now - seen > self.ttl_s]:
            del self._seen[address]


@dataclass
class _Backoff:
    error: str
    failures: int
    until: float


class AckSender:
    """The send_ack half of Radio. ``lookup(address)`` gives the scanner's BLEDevice or a reason
    why there is none; ``adapter()`` the adapter name in use."""

    def __init__(
        self,
        *,
        lookup: Callable[[str], tuple[BLEDevice | None, str]],
        active: Callable[[], bool],
        adapter: Callable[[], str | None],
        forget: Callable[[str], None],
        connect_timeout_s: float,
        max_connections: int,
        op_timeout_s: float,
        tasks: set[asyncio.Task[Any]],
        clock: Callable[[], float],
    ) -> None:
        self._lookup = lookup
        self._active = active
        self._adapter = adapter
        self._forget = forget
        self.connect_timeout_s = connect_timeout_s
        self.op_timeout_s = op_timeout_s
        self.backoff_s = dict(BACKOFF_S)  # per instance, so tests can shorten it
        self._tasks = tasks
        self._connecting: set[asyncio.Task[Any]] = set()  # what abort() cancels
        self._clock = clock
        self._slots = asyncio.Semaphore(max_connections)
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}  # callers holding or awaiting each lock
        self._backoff: dict[str, _Backoff] = {}

    async def send(self, address: str, data: bytes) -> bool:
        address = address.upper()
        if not isinstance(data, bytes | bytearray) or len(data) != ACK_LEN:
            raise ValueError(f"an acknowledgement is {ACK_LEN} bytes")  # a caller bug, not radio
        lock = self._locks.setdefault(address, asyncio.Lock())
        self._users[address] = self._users.get(address, 0) + 1
        try:
            async with lock:  # never two connections to one device: queue behind the previous
                return await self._send(address, bytes(data))
        finally:
            self._users[address] -= 1
            if not self._users[address]:  # don't keep a lock for every address ever acked
                del self._users[address], self._locks[address]

    async def _send(self, address: str, data: bytes) -> bool:
        reason = self._refuse(address)
        device = None
        if reason is None:
            device, reason = self._lookup(address)
        if device is None:
            log.warning("ack to %s not sent: %s", address, reason)
            return False
        async with self._slots:
            error = await self._attempt(address, device, data)
        if error is None:
            self._backoff.pop(address, None)
            return True
        cls, reason = error
        wait = self._back_off(address, cls)  # still under the lock: the next caller sees it
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
        connect_timeout_s); writes and disconnects are left to finish, each bounded."""
        for task in list(self._connecting):
            task.cancel()

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
            self._forget(address)
            return "not_found", f"connect: {describe(e)}"
        if isinstance(e, BleakDBusError) and e.dbus_error == IN_PROGRESS:
            return "busy", f"connect: {describe(e)}"
        if isinstance(e, BleakDBusError) and e.dbus_error == NOT_READY:
            return "adapter", f"connect: adapter not ready ({describe(e)})"
        if isinstance(e, BleakError | OSError | EOFError):
            return "connect_failed", f"connect: {describe(e)}"
        raise e  # a programming error: let it surface
