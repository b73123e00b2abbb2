"""Adverts of devices this hub has no key for: kept for pairing, bounded against floods.

Anyone can advertise a frame claiming any device id, no key needed; so `UnknownDevices` keeps
only the UNKNOWN_KEPT most recently heard ids (the installer pairs a device it just heard:
`hub status` lists them), counts every frame and every id it drops, and logs the first
UNKNOWN_LOGGED new ids of each UNKNOWN_SUMMARY_EVERY_MS one by one, then one summary line for
the rest: a flood of random ids costs neither memory, nor the status file's time, nor the
journal more than that.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import ItemsView
from dataclasses import dataclass

log = logging.getLogger("carebeacon.hub")

UNKNOWN_KEPT = 64  # ids kept, most recently heard
UNKNOWN_LOGGED = 5  # new ids logged one by one per period; the rest go into its summary
UNKNOWN_SUMMARY_EVERY_MS = 60 * 60_000


@dataclass
class Unknown:
    count: int = 0
    rssi: int | None = None
    address: str = ""
    last_mono_ms: int = 0


class UnknownDevices:
    """The unknown device ids heard, newest last (a bounded LRU); `frames` counts every
    frame from them, `dropped` every id pushed out by newer ones."""

    def __init__(self, now: int = 0) -> None:
        self._kept: OrderedDict[int, Unknown] = OrderedDict()
        self.frames = 0
        self.dropped = 0
        self._since = now  # start of the current log period
        self._frames = self._new = self._logged = 0  # in this period

    def heard(self, dev_id: int, address: str, rssi: int | None, now: int) -> None:
        self.frames += 1
        self._frames += 1
        u = self._kept.get(dev_id)
        if u is None:
            u = self._kept[dev_id] = Unknown()
            if len(self._kept) > UNKNOWN_KEPT:
                self._kept.popitem(last=False)
                self.dropped += 1
            self._new += 1
            if self._logged < UNKNOWN_LOGGED:
                self._logged += 1
                log.info(
                    "unknown device %08x at %s (rssi %s): not paired, ignored%s",
                    dev_id,
                    address,
                    rssi,
                    "; more new ones this hour go into one summary"
                    if self._logged == UNKNOWN_LOGGED
                    else "",
                )
        else:
            self._kept.move_to_end(dev_id)
        u.count, u.rssi, u.address, u.last_mono_ms = u.count + 1, rssi, address, now

    def tick(self, now: int) -> None:
        """Call periodically: ends a log period with its summary, if it left ids unlogged."""
        if now - self._since < UNKNOWN_SUMMARY_EVERY_MS:
            return
        if self._new > self._logged:
            log.warning(
                "unknown devices: %d frames from %d new ids in the last %d min, %d of them"
                " not logged one by one (%d ids kept for pairing, %d dropped so far)",
                self._frames,
                self._new,
                (now - self._since) // 60_000,
                self._new - self._logged,
                len(self._kept),
                self.dropped,
            )
        self._since = now
        self._frames = self._new = self._logged = 0

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, dev_id: object) -> bool:
        return dev_id in self._kept

    def __getitem__(self, dev_id: int) -> Unknown:
        return self._kept[dev_id]

    def items(self) -> ItemsView[int, Unknown]:
        return self._kept.items()
