"""The hub's radio edge: hear carebeacon adverts, write acknowledgements, and stay alive doing it.

bleak 3.1 on BlueZ. Frames arrive as manufacturer data (company 0xFFFF, 24 bytes) in BLE
adverts; acknowledgements go back as a 20-byte GATT write (docs/protocol.md "Transport").

What keeps the radio alive (the team's ble-hub notes, "Failure modes"):
- before every scanner start the previous scanner is stopped; a start failing with InProgress
  (or anything else) is retried a few times with short waits, then the adapter is power-cycled
  (Adapter1.Powered off/on: the one public way to clear a stuck discovery session) and retried;
- a watchdog restarts the scanner after ``silence_restart_s`` without any advert and
  power-cycles the adapter if the silence reaches ``silence_reset_s``; both intervals double
  while silence persists (capped), so a genuinely quiet home is not reset every few minutes;
- every watchdog tick reads the adapter's Powered/Discovering (one small D-Bus call), because
  a vanished adapter gives a running scanner nothing but silence; a missing adapter puts the
  radio in "no_adapter" and it is polled for, also under another hciN name (found by MAC, or
  as the only adapter present);
- every await on bleak or D-Bus has an outer timeout (radio_bluez.bounded);
- health is published on every change through ``on_health``, separately from process liveness.

Everything runs on the caller's event loop. bleak keeps one D-Bus connection per loop and
bluetoothd allows one discovery per connection, so run one Radio per loop, and nothing else
that scans (a second scanner in the same loop fails with InProgress).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from dbus_fast.errors import DBusError

from hub.radio_ack import ACK_UUID, BACKOFF_S, SERVICE_UUID, AckSender
from hub.radio_adapter import choose_adapter
from hub.radio_bluez import (
    AdapterInfo,
    BlueZCallError,
    BlueZControl,
    describe,
)
from hub.radio_book import DeviceBook
from hub.radio_health import STATES, HealthTracker, RadioHealth
from hub.radio_scan import Scan
from shared.frame import COMPANY_ID, FRAME_LEN

__all__ = ["ACK_UUID", "SERVICE_UUID", "STATES", "Radio", "RadioHealth"]

log = logging.getLogger("carebeacon.radio")

# Radio trouble: reported through health and retried. Anything else is a bug in this code.
RADIO_TROUBLE = (BleakError, BlueZCallError, DBusError, TimeoutError, OSError, EOFError)


class Radio:
    # Tunables. Class attributes so one Radio (a test) can shrink them without a longer
    # constructor. Why these values:
    op_timeout_s = 10.0  # one bleak/D-Bus operation; bluetoothd answers in ms when healthy
    cancel_grace_s = 2.0  # how long a timed-out operation may take to unwind before we move on
    start_attempts = 3  # scanner starts before a power cycle: InProgress usually clears at once
    start_retry_s = 0.3  # first wait between those starts, doubling
    power_off_s = 0.5  # adapter off-time in a power cycle
    adapter_poll_s = 3.0  # while no adapter: one GetManagedObjects this often (small then)
    error_retry_s = (1.0, 60.0)  # first and longest wait after a failed bring-up
    tick_s = 5.0  # watchdog period; never more than silence_restart_s / 10
    device_ttl_s = 30.0  # bluetoothd forgets a device 30 s after its last advert
    escalation_cap = 8  # restart/reset intervals double while silence persists, up to 8x
    nag_s = 300.0  # while down, repeat the error log this often
    ack_backoff_s = BACKOFF_S  # error class -> (first, longest) wait before reconnecting a device

    def __init__(
        self,
        *,
        adapter: str = "hci0",
        scanning: str = "active",
        silence_restart_s: float = 90,
        silence_reset_s: float = 300,
        connect_timeout_s: float = 10.0,
        max_connections: int = 3,
        on_advert: Callable[[str, bytes, int | None], None],
        on_health: Callable[[RadioHealth], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if scanning not in ("active", "passive"):
            raise ValueError("scanning must be 'active' or 'passive'")
        if not 0 < silence_restart_s <= silence_reset_s:
            raise ValueError("need 0 < silence_restart_s <= silence_reset_s")
        if connect_timeout_s <= 0 or max_connections < 1:
            raise ValueError("need connect_timeout_s > 0 and max_connections >= 1")
        self.adapter = adapter
        self.scanning = scanning
        self.silence_restart_s = silence_restart_s
        self.silence_reset_s = silence_reset_s
        self._on_advert = on_advert
        self._clock = clock

        self._running = False
        self._task: asyncio.Task[None] | None = None  # the supervisor (watchdog)
        self._tasks: set[asyncio.Task[Any]] = set()  # bounded operations, alive or abandoned
        self._bluez = BlueZControl(self.op_timeout_s)
        self._scan = Scan(scanning, self._on_detection, self._tasks)
        self._name: str | None = None  # adapter in use (may differ from the configured one)
        self._mac: str | None = None  # its MAC: finds it again under another hciN
        self._devices = DeviceBook(clock, self.device_ttl_s)  # for acks: the BLEDevices heard

        self._h = HealthTracker(clock, on_health, self.nag_s)
        self._first_up: float | None = None  # first scanner start: silence counts from there
        self._restart_at = self._reset_at = -math.inf
        self._restart_level = self._reset_level = 0
        self._check_failures = 0  # watchdog adapter reads that failed in a row
        self._lost_ticks = 0  # ticks in a row the adapter said "not powered/discovering"

        self._acks = AckSender(
            lookup=self._lookup,
            active=lambda: self._running,
            adapter=lambda: self._name,
            book=self._devices,
            connect_timeout_s=connect_timeout_s,
            max_connections=max_connections,
            op_timeout_s=self.op_timeout_s,
            tasks=self._tasks,
            clock=clock,
        )

    # -- public API ------------------------------------------------------------------------------

    @property
    def health(self) -> RadioHealth:
        return self._h.snapshot()

    async def start(self) -> None:
        """Start scanning (first attempt inline) and the watchdog. Radio trouble never raises:
        it shows in health and the watchdog keeps retrying."""
        if self._running:
            return
        self._running = True
        # tunables may have been changed on this instance since __init__
        self._bluez = BlueZControl(self.op_timeout_s)
        self._acks.op_timeout_s = self.op_timeout_s
        self._acks.backoff_s = dict(self.ack_backoff_s)
        self._devices.ttl_s = self.device_ttl_s
        self._h.nag_s = self.nag_s
        self._h.set("starting", f"looking for adapter {self.adapter}")
        try:
            await self._bring_up()
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._supervise(), name="carebeacon.radio.watchdog")

    async def stop(self) -> None:
        """Stop scanning, the watchdog and acknowledgements in flight; no task is left running.
        Takes milliseconds normally; with a wedged D-Bus at most about op_timeout_s plus twice
        cancel_grace_s (14 s with the defaults)."""
        self._running = False  # send_ack refuses new work from here on
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.op_timeout_s  # for the orderly part
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=self.cancel_grace_s)
        self._acks.abort()  # connects in progress; their disconnects still run
        await self._scan.stop(max(0.1, deadline - loop.time()), self.cancel_grace_s)
        while self._tasks and loop.time() < deadline:  # a loop: a write may start a disconnect
            await asyncio.wait(set(self._tasks), timeout=deadline - loop.time())
        for t in set(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.cancel_grace_s)
        if self._tasks:
            log.error("radio stop: %d D-Bus operations did not end", len(self._tasks))
        await self._bluez.close()
        self._devices.clear()

    async def send_ack(self, address: str, data: bytes, *, own: bool = True) -> bool:
        """Connect to ``address`` (the BLEDevice the scanner saw), write ``data`` (20 bytes) to
        the acknowledgement characteristic with response, disconnect. False, with a logged
        reason, on any failure: never seen or forgotten, backing off after a failure, connect
        timeout, refused write, radio down or stopped, or too many other addresses claiming
        the device already waiting (relays; ``own``: the pipeline says it is the device's own
        address, served first and never refused for them: hub/radio_ack_limits.py).

        One connection at a time per address, and acks waiting for one are coalesced per frame
        (hub/radio_ack.py): the newest status wins, never an older one after a newer one. A
        call whose ack was merged into another returns True only if the ack written in its
        place covers it (same frame, status at least as high, its setting if it had one)."""
        return await self._acks.send(address, data, own=own)

    # -- the supervisor --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            try:
                if not self._scan.running:
                    if self._h.state == "no_adapter":
                        await asyncio.sleep(self.adapter_poll_s)
                    else:
                        failures += 1
                        first, longest = self.error_retry_s
                        await asyncio.sleep(min(longest, first * 2 ** (failures - 1)))
                    if await self._bring_up():
                        failures = 0
                    continue
                await asyncio.sleep(min(self.tick_s, self.silence_restart_s / 10))
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug here must not end the radio silently
                log.exception("radio watchdog: unexpected error, retrying")
                self._h.set("error", f"internal error: {describe(e)}")
                with contextlib.suppress(Exception):  # the next bring-up starts afresh
                    await self._scan.stop(self.op_timeout_s, self.cancel_grace_s)

    async def _watch(self) -> None:
        """One watchdog tick while a scanner runs."""
        now = self._clock()
        self._devices.prune(now)
        name = self._name
        assert name is not None
        try:
            info = await self._bluez.adapter(name)
        except RADIO_TROUBLE as e:
            self._check_failures += 1
            log.warning(
                "adapter %s check failed (%d in a row): %s", name, self._check_failures, describe(e)
            )
            if self._check_failures >= 3:
                await self._restart(f"bluetoothd not answering: {describe(e)}")
            return
        self._check_failures = 0
        if info is None:
            # unplugged, or its driver reset: it may already be back under another name
            log.error("adapter %s vanished while scanning", name)
            await self._bring_up()
            return
        if not info.powered or (self._scan.mode == "active" and not info.discovering):
            # twice in a row: Discovering can blink while bluetoothd restarts LE discovery
            self._lost_ticks += 1
            if self._lost_ticks >= 2:
                what = "was powered off" if not info.powered else "stopped discovering"
                await self._restart(f"adapter {name} {what} under us")
            return
        self._lost_ticks = 0

        quiet_from = self._h.heard_at if self._h.heard_at is not None else self._first_up
        assert quiet_from is not None
        silent = now - quiet_from
        reset_due = max(quiet_from, self._reset_at) + self.silence_reset_s * self._escalation(
            self._reset_level
        )
        restart_due = max(quiet_from, self._restart_at) + self.silence_restart_s * self._escalation(
            self._restart_level
        )
        reason = f"no advert for {silent:.1f} s" if silent < 10 else f"no advert for {silent:.0f} s"
        if now >= reset_due:
            self._reset_level += 1
            await self._reset(reason)
        elif now >= restart_due:
            self._restart_level += 1
            await self._restart(reason)

    def _escalation(self, level: int) -> int:
        return min(self.escalation_cap, 2**level)

    async def _restart(self, reason: str) -> None:
        self._h.restarts += 1
        self._h.set("restarting", reason)
        await self._bring_up()

    async def _reset(self, reason: str) -> None:
        await self._scan.stop(self.op_timeout_s, self.cancel_grace_s)
        if self._name is not None:
            try:
                await self._power_cycle(self._name, reason)
            except RADIO_TROUBLE as e:
                log.error("power cycle of %s failed: %s", self._name, describe(e))
        await self._bring_up()

    # -- bringing scanning up ----------------------------------------------------------------------

    async def _bring_up(self) -> bool:
        """Scanning from any state: old scanner stopped, adapter found (and powered), scanner
        started with a few retries, then a power cycle and a few more. Sets health either way."""
        await self._scan.stop(self.op_timeout_s, self.cancel_grace_s)
        last: BaseException | None = None
        try:
            for cycle in (False, True):
                info = await self._find_adapter()
                if info is None:
                    return False
                if cycle and last is not None:
                    await self._power_cycle(info.name, f"scanner start failed: {describe(last)}")
                for attempt in range(self.start_attempts):
                    if attempt:
                        await asyncio.sleep(self.start_retry_s * 2 ** (attempt - 1))
                        info = await self._find_adapter()  # still there? (it may have just gone)
                        if info is None:
                            return False
                    try:
                        await self._start_scanner(info.name)
                        return True
                    except RADIO_TROUBLE as e:
                        last = e
                        log.warning(
                            "scanner start on %s failed (attempt %d of %d): %s",
                            info.name,
                            attempt + 1,
                            self.start_attempts,
                            describe(e),
                        )
        except RADIO_TROUBLE as e:
            self._h.set("error", f"bluetoothd: {describe(e)}")
            return False
        assert last is not None  # start_attempts >= 1
        self._h.set("error", f"scanner will not start: {describe(last)}")
        return False

    async def _find_adapter(self) -> AdapterInfo | None:
        """The adapter to use: the one we used before (by MAC, whatever its name now), else the
        configured name, else the only adapter there is. None (health no_adapter) if none."""
        chosen, note = choose_adapter(await self._bluez.adapters(), self.adapter, self._mac,
                                      self._name)
        if chosen is None:
            self._devices.clear()
            self._h.set("no_adapter", note)
            return None
        if note:
            log.warning("%s", note)
        if self._name is not None and chosen.name != self._name:
            log.warning("adapter %s is now %s", self._name, chosen.name)
            self._devices.clear()  # their BLEDevices name the old adapter's object paths
        self._name = chosen.name
        self._mac = chosen.address or self._mac
        if not chosen.powered:
            log.warning("adapter %s is powered off; powering it on", chosen.name)
            await self._bluez.set_powered(chosen.name, True)
        return chosen

    async def _start_scanner(self, name: str) -> None:
        detail = await self._scan.start(name, self.op_timeout_s, self.cancel_grace_s)
        now = self._clock()
        self._restart_at = now
        if self._first_up is None:
            self._first_up = now
        self._lost_ticks = self._check_failures = 0
        self._h.set("scanning", detail)

    async def _power_cycle(self, name: str, reason: str) -> None:
        """Adapter1.Powered off, then on: clears every discovery session and stuck state."""
        self._h.resets += 1
        self._reset_at = self._clock()
        self._h.set("resetting", f"power-cycling {name}: {reason}")
        self._devices.clear()  # bluetoothd removes its device objects on power off
        await self._bluez.set_powered(name, False)
        await asyncio.sleep(self.power_off_s)
        await self._bluez.set_powered(name, True)

    # -- adverts -----------------------------------------------------------------------------------

    def _on_detection(self, device: BLEDevice, adv: AdvertisementData) -> None:
        now = self._clock()
        payload = adv.manufacturer_data.get(COMPANY_ID)
        ours = payload is not None and len(payload) == FRAME_LEN
        address = device.address.upper()
        new = ours and self._devices.saw(address, device, payload, now)
        if new or not (ours and self._acks.echo_of_ours(address)):  # an echo: no sign of life
            self._h.heard_at = now
            self._restart_level = self._reset_level = 0
            self._h.adverts += 1
        if not new:
            # Not a new advert. bleak reports every Device1 property change as one, with the
            # cached manufacturer data: our own ack connection (Connected, ServicesResolved)
            # would echo the frame back, the pipeline would answer the "duplicate" with another
            # ack, and so on for ever. BlueZ also re-reports an unchanged advert after each scan
            # cycle (~10 s). Devices never send the same bytes twice (attempt, age and tag
            # change with every retransmission), so dropping byte-identical repeats loses
            # nothing the pipeline needs; a real retransmission always gets through.
            return
        # bleak reports -127 when BlueZ has no RSSI (e.g. a callback caused by a connection),
        # HCI 127 ("not available"); the contract carries -127..20 dBm (pipeline.usable_rssi)
        rssi = int(adv.rssi) if isinstance(adv.rssi, int) and -127 < adv.rssi <= 20 else None
        try:
            self._on_advert(address, bytes(payload), rssi)
        except Exception:
            log.exception("on_advert failed for an advert from %s", address)

    def _lookup(self, address: str) -> tuple[BLEDevice | None, str]:
        if not self._running:
            return None, "radio not running"
        if self._h.state == "no_adapter":
            return None, f"no adapter ({self._h.detail})"
        return self._devices.get(address)
