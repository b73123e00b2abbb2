"""What the radio knows of each address it heard: the BLEDevice to connect to, and the device
its adverts claim (hub/radio_ack.py, hub/radio_ack_limits.py)."""

from __future__ import annotations

from collections.abc import Callable

from bleak.backends.device import BLEDevice

from hub.radio_ack_limits import Claim
from shared.frame import FrameError, peek_device_id


class DeviceBook:
    """The BLEDevice the scanner reported for each carebeacon device: what send_ack connects to
    (never an address string: notes, failure mode 5), and the device id its adverts claim (not
    authenticated; None once it claimed two). Entries expire like bluetoothd's own device
    objects, 30 s after the last advert; a power cycle or adapter change clears them."""

    def __init__(self, clock: Callable[[], float], ttl_s: float) -> None:
        self._clock = clock
        self.ttl_s = ttl_s
        # device, when, last payload, claimed device id
        self._seen: dict[str, tuple[BLEDevice, float, bytes, Claim]] = {}

    def saw(self, address: str, device: BLEDevice, payload: bytes, now: float) -> bool:
        """Record a report; False if it repeats the payload last reported for that address."""
        entry = self._seen.get(address)
        try:
            claim: Claim = peek_device_id(payload)
        except FrameError:
            claim = None
        if entry is not None and entry[3] != claim:
            claim = None  # a device only ever sends its own id: this address is no one device
        self._seen[address] = (device, now, payload, claim)
        return entry is None or entry[2] != payload

    def claim(self, address: str) -> Claim:
        entry = self._seen.get(address)
        return None if entry is None else entry[3]

    def get(self, address: str) -> tuple[BLEDevice | None, str]:
        entry = self._seen.get(address)
        if entry is None:
            return None, "no advert from it since the radio started or the adapter was reset"
        device, seen, _, _ = entry
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
        for address in [a for a, (_, seen, *_) in self._seen.items() if now - seen > self.ttl_s]:
            del self._seen[address]
