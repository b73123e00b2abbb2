"""The uplink's retained messages: the hub's state and its devices' availability (docs/mqtt.md).

Both are republished on every connect, so a broker that lost its retained messages is repaired.
So is the clear of an unpaired device's availability (`forget_device`, an empty retained
payload), until the broker's PUBACK for it: its caller keeps that duty across restarts
(hub/unpaired.py) and learns of the PUBACK through `confirmed`, run on the loop like the
uplink's other callbacks.
`_state_lock` orders an update against a (re)connection, so what is republished on connect is
never older than an update made meanwhile: `_republish` runs under it and marks the uplink
connected before letting go, and every update records (and, when connected, publishes) under
it. Publishing under it is safe: the publish is made on the loop's thread or only posted there,
and paho's on_publish takes only the uplink's own lock.

`Retained` is a part of `hub.uplink.Uplink` (its base class), split off to keep modules small.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub import contract

if TYPE_CHECKING:
    from hub.uplink_callbacks import Callbacks
    from hub.uplink_config import UplinkConfig


class Retained:
    config: UplinkConfig
    state_topic: str
    _callbacks: Callbacks
    _publish: Any  # Uplink._publish(topic, payload, *, retain, tag) -> bool

    def __init__(self) -> None:
        self._state_lock = threading.Lock()
        self._availability: dict[int, bool] = {}  # latest known; republished on every connect
        self._radio: tuple[str, str | None] = ("unknown", None)
        # unpaired devices whose clear awaits its PUBACK -> the caller's `confirmed`
        self._unpaired: dict[int, Callable[[int], Any] | None] = {}
        self._connected = False

    def publish_availability(
        self, device_id: int, online: bool, last_seen: float | None = None
    ) -> None:
        """Record a device's availability: published (retained) on change if connected, and
        after every connect."""
        with self._state_lock:
            self._unpaired.pop(device_id, None)  # paired again: its availability counts
            changed = self._availability.get(device_id) != online
            self._availability[device_id] = online
            if changed and self._connected:
                self._send_availability(device_id, online, last_seen)

    def forget_device(
        self, device_id: int, confirmed: Callable[[int], Any] | None = None
    ) -> None:
        """Announce a device unpaired: its retained availability cleared (an empty retained
        payload), now if connected and after every connect until the broker's PUBACK for it
        (a success code); `confirmed(device_id)` then runs on the loop."""
        with self._state_lock:
            self._availability.pop(device_id, None)
            self._unpaired[device_id] = confirmed
            if self._connected:
                self._send_unpaired(device_id)

    def publish_state(self, radio: str, radio_detail: str | None = None) -> None:
        """Report the radio's health in the retained state message (online, reason update)."""
        with self._state_lock:
            self._radio = (radio, radio_detail)
            if self._connected:
                self._send_state("update")

    def _republish(self) -> None:
        """Just connected: state online, every device's availability; then connected."""
        with self._state_lock:
            self._send_state("connected")
            for device_id, online in self._availability.items():  # the broker may have lost
                self._send_availability(device_id, online)  # its retained messages
            for device_id in self._unpaired:  # the last clear may not have reached it
                self._send_unpaired(device_id)
            self._connected = True

    def _retained_acked(self, what: str, ref: str | None) -> None:
        """A PUBACK with a success code (the loop's thread). Queued, not handled here: a
        PUBACK read early is handled inside a publish made under `_state_lock`."""
        if what == "unpaired" and ref is not None:
            self._callbacks.call(self._unpaired_confirmed, int(ref, 16))

    def _unpaired_confirmed(self, device_id: int) -> None:
        with self._state_lock:
            if device_id not in self._unpaired:  # paired again meanwhile, or confirmed
                return
            confirmed = self._unpaired.pop(device_id)
        if confirmed is not None:
            confirmed(device_id)

    def _state_payload(self, online: bool, reason: str) -> bytes:
        c = self.config
        msg = contract.build_state(
            hub=c.hub_id,
            county=c.county,
            online=online,
            reason=reason,
            radio=self._radio[0],
            radio_detail=self._radio[1],
            software=c.software,
        )
        return contract.encode(msg)

    def _send_state(self, reason: str) -> None:
        payload = self._state_payload(True, reason)
        self._publish(self.state_topic, payload, retain=True, tag=("state", None))

    def _send_unpaired(self, device_id: int) -> None:
        c = self.config
        topic = contract.availability_topic(c.county, c.hub_id, device_id)
        self._publish(topic, b"", retain=True, tag=("unpaired", contract.device_hex(device_id)))

    def _send_availability(
        self, device_id: int, online: bool, last_seen: float | None = None
    ) -> None:
        c = self.config
        msg = contract.build_availability(
            hub=c.hub_id, county=c.county, device_id=device_id, online=online, last_seen=last_seen
        )
        self._publish(
            contract.availability_topic(c.county, c.hub_id, device_id),
            contract.encode(msg),
            retain=True,
            tag=("availability", None),
        )
