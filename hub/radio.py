"""The hub's radio edge: hear carebeacon adverts, write acknowledgements, and stay alive doing it.

bleak 3.1 on BlueZ. Frames arrive as manufacturer data (company 0xFFFF, 24 bytes) in BLE
adverts; acknowledgements go back as a 20-byte GATT write (docs/protocol.md "Transport").

What keeps the radio alive (/work/shared/notes/ble-hub.md, "Failure modes"):
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
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError
from dbus_fast.errors import DBusError

from hub.radio_ack import ACK_UUID, BACKOFF_S, SERVICE_UUID, AckSender
from hub.radio_bluez import (
    IN_PROGRESS,
    NOT_READY,
    AdapterInfo,
    BlueZCallError,
    BlueZControl,
    bounded,
    describe,
)
from shared.frame import COMPANY_ID, FRAME_LEN

__all__ = ["ACK_UUID", "SERVICE_UUID", "STATES", "Radio", "RadioHealth"]

log = logging.getLogger("carebeacon.radio")

STATES = ("starting", "scanning", "restarting", "resetting", "no_adapter", "error")
# What the platform sees (docs/mqtt.md "Hub state": radio.status)
_STATUS = {
    "scanning": "ok",
    "starting": "degraded",
    "restarting": "degraded",
    "resetting": "degraded",
    "no_adapter": "down",
    "error": "down",
}
_LOG_LEVEL = {
    "scanning": logging.INFO,
    "starting": logging.INFO,
    "restarting": logging.WARNING,
    "resetting": logging.WARNING,
    "no_adapter": logging.ERROR,
    "error": logging.ERROR,
}
# Radio trouble: reported through health and retried. Anything else is a bug in this code.
RADIO_TROUBLE = (BleakError, BlueZCallError, DBusError, TimeoutError, OSError, EOFError)
# Passive scanning: BlueZ advertisement monitor patterns. Devices send flags 0x06 as their
# first AD structure (docs/protocol.md), which is also what Home Assistant's patterns match.
PASSIVE_PATTERNS = [OrPattern(0, AdvertisementDataType.FLAGS, b"\x06")]


@dataclass(frozen=True)
class RadioHealth:
    state: str  # one of STATES
    detail: str  # why, in words (<= 200 characters: the MQTT radio.detail limit)
    last_advert_age_s: float | None  # since the radio last heard any advert; None: never
    restarts: int  # scanner restarts (watchdog, adapter back, scan lost)
    resets: int  # adapter power cycles
    adverts: int  # adverts reported by the scanner (any device, any payload)
    since: float  # clock() when this state began

    @property
    def status(self) -> str:
        """The platform's radio.status: ok, degraded or down."""
        return _STATUS[self.state]


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
        self._on_health = on_health
        self._clock = clock

        self._running = False
        self._task: asyncio.Task[None] | None = None  # the supervisor (watchdog)
        self._tasks: set[asyncio.Task[Any]] = set()  # bounded operations, alive or abandoned
        self._bluez = BlueZControl(self.op_timeout_s)
        self._scanner: BleakScanner | None = None
        self._gen = 0  # bumped per scanner: callbacks from an old scanner are ignored
        self._mode = "active"  # what the current scanner really does
        self._passive_refused: str | None = None  # why passive scanning fell back to active
        self._name: str | None = None  # adapter in use (may differ from the configured one)
        self._mac: str | None = None  # its MAC: finds it again under another hciN
        self._devices: dict[str, tuple[BLEDevice, float]] = {}  # carebeacon devices heard

        self._state, self._detail, self._since = "starting", "not started", clock()
        self._nagged = -math.inf
        self.restarts = self.resets = self._adverts = 0
        self._heard_at: float | None = None  # last advert
        self._first_up: float | None = None  # first scanner start: silence counts from there
        self._restart_at = self._reset_at = -math.inf
        self._restart_level = self._reset_level = 0
        self._check_failures = 0  # watchdog adapter reads that failed in a row
        self._lost_ticks = 0  # ticks in a row the adapter said "not powered/discovering"

        self._acks = AckSender(
            lookup=self._lookup,
            active=lambda: self._running,
            adapter=lambda: self._name,
            forget=lambda address: self._devices.pop(address, None),
            connect_timeout_s=connect_timeout_s,
            max_connections=max_connections,
            op_timeout_s=self.op_timeout_s,
            tasks=self._tasks,
            clock=clock,
        )

    # -- public API ------------------------------------------------------------------------------

    @property
    def health(self) -> RadioHealth:
        age = None if self._heard_at is None else max(0.0, self._clock() - self._heard_at)
        return RadioHealth(
            self._state, self._detail, age, self.restarts, self.resets, self._adverts, self._since
        )

    async def start(self) -> None:
        """Start scanning (first attempt inline) and the watchdog. Radio trouble never raises:
        it shows in health and the watchdog keeps retrying."""
        if self._running:
            return
        self._running = True
        self._bluez = BlueZControl(self.op_timeout_s)
        self._acks.op_timeout_s = self.op_timeout_s
        self._acks.backoff_s = dict(self.ack_backoff_s)
        self._set("starting", f"looking for adapter {self.adapter}")
        try:
            await self._bring_up()
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._supervise(), name="carebeacon.radio.watchdog")

    async def stop(self) -> None:
        """Stop scanning, the watchdog and acknowledgements in flight; no task is left running."""
        self._running = False  # send_ack refuses new work from here on
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=self.cancel_grace_s)
        self._acks.abort()  # connects in progress; their disconnects still run
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.op_timeout_s)
        await self._drop_scanner()
        for t in set(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.cancel_grace_s)
        if self._tasks:
            log.error("radio stop: %d D-Bus operations did not end", len(self._tasks))
        await self._bluez.close()
        self._devices.clear()

    async def send_ack(self, address: str, data: bytes) -> bool:
        """Connect to ``address`` (the BLEDevice the scanner saw), write ``data`` (20 bytes) to
        the acknowledgement characteristic with response, disconnect. False, with a logged
        reason, on any failure: never seen or forgotten, backing off after a failure, connect
        timeout, refused write, radio down or stopped. Calls for one address are serialised."""
        return await self._acks.send(address, data)

    # -- the supervisor --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            try:
                if self._scanner is None:
                    if self._state == "no_adapter":
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
                self._set("error", f"internal error: {describe(e)}")
                self._scanner = None  # abandon it; the next bring-up starts afresh
                self._gen += 1

    async def _watch(self) -> None:
        """One watchdog tick while a scanner runs."""
        now = self._clock()
        self._prune_devices(now)
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
            await self._drop_scanner()
            self._no_adapter(f"adapter {name} vanished")
            return
        if not info.powered or (self._mode == "active" and not info.discovering):
            # twice in a row: Discovering can blink while bluetoothd restarts LE discovery
            self._lost_ticks += 1
            if self._lost_ticks >= 2:
                what = "was powered off" if not info.powered else "stopped discovering"
                await self._restart(f"adapter {name} {what} under us")
            return
        self._lost_ticks = 0

        quiet_from = self._heard_at if self._heard_at is not None else self._first_up
        assert quiet_from is not None
        silent = now - quiet_from
        reset_due = max(quiet_from, self._reset_at) + self.silence_reset_s * self._escalation(
            self._reset_level
        )
        restart_due = max(quiet_from, self._restart_at) + self.silence_restart_s * self._escalation(
            self._restart_level
        )
        if now >= reset_due:
            self._reset_level += 1
            await self._reset(f"no advert for {silent:.0f} s")
        elif now >= restart_due:
            self._restart_level += 1
            await self._restart(f"no advert for {silent:.0f} s")

    def _escalation(self, level: int) -> int:
        return min(self.escalation_cap, 2**level)

    async def _restart(self, reason: str) -> None:
        self.restarts += 1
        self._set("restarting", reason)
        await self._bring_up()

    async def _reset(self, reason: str) -> None:
        await self._drop_scanner()
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
        await self._drop_scanner()
        last: BaseException | None = None
        try:
            for cycle in (False, True):
                info = await self._find_adapter()
                if info is None:
                    return False
                if cycle:
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
            self._set("error", f"bluetoothd: {describe(e)}")
            return False
        self._set("error", f"scanner will not start: {describe(last) if last else '?'}")
        return False

    async def _find_adapter(self) -> AdapterInfo | None:
        """The adapter to use: the one we used before (by MAC, whatever its name now), else the
        configured name, else the only adapter there is. None (health no_adapter) if none."""
        adapters = await self._bluez.adapters()
        by_mac = [a for a in adapters.values() if self._mac and a.address == self._mac]
        if by_mac:
            chosen = by_mac[0]
        elif self.adapter in adapters:
            chosen = adapters[self.adapter]
        elif len(adapters) == 1:
            (chosen,) = adapters.values()
            log.warning(
                "adapter %s not found; using the only adapter, %s (%s)",
                self.adapter,
                chosen.name,
                chosen.address,
            )
        else:
            present = ", ".join(sorted(adapters))
            self._no_adapter(
                f"adapter {self.adapter} not found (present: {present})"
                if adapters
                else "no Bluetooth adapter"
            )
            return None
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
        await self._drop_scanner()
        mode = "passive" if self.scanning == "passive" and not self._passive_refused else "active"
        try:
            scanner = await self._new_scanner(name, mode)
        except BleakError as e:
            if mode != "passive" or not _passive_unsupported(e):
                raise
            self._passive_refused = describe(e)
            log.warning(
                "passive scanning unavailable on %s (%s): falling back to active "
                "scanning, which makes devices send scan responses",
                name,
                describe(e),
            )
            mode = "active"
            scanner = await self._new_scanner(name, mode)
        self._scanner, self._mode = scanner, mode
        now = self._clock()
        self._restart_at = now
        if self._first_up is None:
            self._first_up = now
        self._lost_ticks = self._check_failures = 0
        detail = f"{mode} scanning on {name}"
        if self._passive_refused:
            detail = f"passive scanning unavailable ({self._passive_refused}); {detail}"
        self._set("scanning", detail)

    async def _new_scanner(self, name: str, mode: str) -> BleakScanner:
        self._gen += 1
        args: dict[str, Any] = {"adapter": name}
        if mode == "passive":
            args["or_patterns"] = PASSIVE_PATTERNS
        scanner = BleakScanner(
            partial(self._on_detection, self._gen),
            scanning_mode="passive" if mode == "passive" else "active",
            bluez=args,  # type: ignore[arg-type]
        )
        await bounded(
            scanner.start(),
            self.op_timeout_s,
            f"{mode} scan start on {name}",
            self._tasks,
            self.cancel_grace_s,
        )
        return scanner

    async def _drop_scanner(self) -> None:
        scanner, self._scanner = self._scanner, None
        self._gen += 1  # late callbacks of the old scanner are ignored
        if scanner is None:
            return
        try:
            await bounded(
                scanner.stop(), self.op_timeout_s, "scan stop", self._tasks, self.cancel_grace_s
            )
        except RADIO_TROUBLE as e:
            # expected when the adapter vanished (UnknownObject) or was power-cycled
            log.info("stopping the old scanner: %s", describe(e))

    async def _power_cycle(self, name: str, reason: str) -> None:
        """Adapter1.Powered off, then on: clears every discovery session and stuck state."""
        self.resets += 1
        self._reset_at = self._clock()
        self._set("resetting", f"power-cycling {name}: {reason}")
        self._devices.clear()  # bluetoothd removes its device objects on power off
        await self._bluez.set_powered(name, False)
        await asyncio.sleep(self.power_off_s)
        await self._bluez.set_powered(name, True)

    def _no_adapter(self, detail: str) -> None:
        self._devices.clear()
        self._set("no_adapter", detail)

    # -- adverts -----------------------------------------------------------------------------------

    def _on_detection(self, gen: int, device: BLEDevice, adv: AdvertisementData) -> None:
        if gen != self._gen:
            return
        now = self._clock()
        self._heard_at = now
        self._restart_level = self._reset_level = 0
        self._adverts += 1
        payload = adv.manufacturer_data.get(COMPANY_ID)
        if payload is None or len(payload) != FRAME_LEN:
            return
        address = device.address.upper()
        self._devices[address] = (device, now)
        # bleak reports -127 when BlueZ has no RSSI (e.g. a callback caused by a connection)
        rssi = adv.rssi if adv.rssi is not None and adv.rssi > -127 else None
        try:
            self._on_advert(address, bytes(payload), rssi)
        except Exception:
            log.exception("on_advert failed for an advert from %s", address)

    def _lookup(self, address: str) -> tuple[BLEDevice | None, str]:
        if not self._running:
            return None, "radio not running"
        if self._state == "no_adapter":
            return None, f"no adapter ({self._detail})"
        entry = self._devices.get(address)
        if entry is None:
            return None, "no advert from it since the radio started or the adapter was reset"
        device, seen = entry
        age = self._clock() - seen
        if age > self.device_ttl_s:
            del self._devices[address]
            return None, f"last advert {age:.0f} s ago: bluetoothd has forgotten it"
        return device, ""

    def _prune_devices(self, now: float) -> None:
        for address in [
            a for a, (_, seen) in self._devices.items() if now - seen > self.device_ttl_s
        ]:
            del self._devices[address]

    # -- health ------------------------------------------------------------------------------------

    def _set(self, state: str, detail: str) -> None:
        detail = detail[:200]
        now = self._clock()
        if (state, detail) == (self._state, self._detail):
            if _STATUS[state] == "down" and now - self._nagged >= self.nag_s:
                self._nagged = now
                log.error("radio still %s: %s", state, detail)
            return
        if state != self._state:
            self._since = now
        self._state, self._detail = state, detail
        if _STATUS[state] == "down":
            self._nagged = now
        log.log(_LOG_LEVEL[state], "radio %s: %s", state, detail)
        if self._on_health is not None:
            try:
                self._on_health(self.health)
            except Exception:
                log.exception("on_health failed")


def _passive_unsupported(e: BleakError) -> bool:
    """A passive start failure that active scanning would not have (BlueZ without
    --experimental, old kernel), as opposed to a missing or busy adapter."""
    if isinstance(e, BleakDBusError):
        return e.dbus_error not in (
            IN_PROGRESS,
            NOT_READY,
            "org.freedesktop.DBus.Error.UnknownObject",
        )
    return "not found" not in str(e)
