"""The one BleakScanner the radio runs: start (passive if asked and possible), stop, bounded.

Passive scanning registers a BlueZ advertisement monitor (AdvertisementMonitorManager1), which
needs BlueZ >= 5.56 started with --experimental and kernel >= 5.10 (ble-hub notes). Where
it is missing the start fails; we then scan actively for the rest of the Radio's life, say so
in a warning and in health.detail, and do not retry passive on every restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError

from hub.radio_bluez import IN_PROGRESS, NOT_READY, UNKNOWN_OBJECT, bounded, describe

log = logging.getLogger("carebeacon.radio")

# Devices send flags 0x06 as their first AD structure (docs/protocol.md), which is also what
# Home Assistant's monitor patterns match.
PASSIVE_PATTERNS = [OrPattern(0, AdvertisementDataType.FLAGS, b"\x06")]


class Scan:
    """At most one running scanner; ``on_detection`` hears only the current one."""

    def __init__(
        self,
        scanning: str,
        on_detection: Callable[[BLEDevice, AdvertisementData], None],
        tasks: set[asyncio.Task[Any]],
    ) -> None:
        self.scanning = scanning  # what was asked for: "active" or "passive"
        self.mode = "active"  # what the running scanner does
        self.passive_refused: str | None = None  # why passive fell back to active
        self._on_detection = on_detection
        self._tasks = tasks
        self._scanner: BleakScanner | None = None
        self._gen = 0  # bumped per scanner: callbacks from an old one are ignored

    @property
    def running(self) -> bool:
        return self._scanner is not None

    async def start(self, name: str, timeout: float, grace: float) -> str:
        """Start scanning on adapter ``name``; returns the health detail. Raises on failure."""
        await self.stop(timeout, grace)
        mode = "passive" if self.scanning == "passive" and not self.passive_refused else "active"
        try:
            scanner = await self._start(name, mode, timeout, grace)
        except BleakError as e:
            if mode != "passive" or not _passive_unsupported(e):
                raise
            self.passive_refused = describe(e)
            log.warning(
                "passive scanning unavailable on %s (%s): falling back to active scanning, "
                "which makes devices send scan responses",
                name,
                describe(e),
            )
            mode = "active"
            scanner = await self._start(name, mode, timeout, grace)
        self._scanner, self.mode = scanner, mode
        detail = f"{mode} scanning on {name}"
        if self.passive_refused:
            detail = f"passive scanning unavailable ({self.passive_refused}); {detail}"
        return detail

    async def stop(self, timeout: float, grace: float) -> None:
        """Stop the scanner if one runs. Never raises for radio trouble: a failed stop is
        expected when the adapter vanished (UnknownObject) or was power-cycled."""
        scanner, self._scanner = self._scanner, None
        self._gen += 1
        if scanner is None:
            return
        try:
            await bounded(scanner.stop(), timeout, "scan stop", self._tasks, grace)
        except (BleakError, TimeoutError, OSError, EOFError) as e:
            log.info("stopping the old scanner: %s", describe(e))

    async def _start(self, name: str, mode: str, timeout: float, grace: float) -> BleakScanner:
        self._gen += 1
        args: dict[str, Any] = {"adapter": name}
        if mode == "passive":
            args["or_patterns"] = PASSIVE_PATTERNS
        scanner = BleakScanner(
            partial(self._detected, self._gen),
            scanning_mode="passive" if mode == "passive" else "active",
            bluez=args,  # type: ignore[arg-type]
        )
        await bounded(scanner.start(), timeout, f"{mode} scan start on {name}", self._tasks, grace)
        return scanner

    def _detected(self, gen: int, device: BLEDevice, adv: AdvertisementData) -> None:
        if gen == self._gen:
            self._on_detection(device, adv)


def _passive_unsupported(e: BleakError) -> bool:
    """A passive start failure that active scanning would not have (BlueZ without
    --experimental, old kernel), as opposed to a missing or busy adapter."""
    if isinstance(e, BleakDBusError):
        return e.dbus_error not in (IN_PROGRESS, NOT_READY, UNKNOWN_OBJECT)
    return "not found" not in str(e)  # bleak: "adapter 'hci0' not found"
