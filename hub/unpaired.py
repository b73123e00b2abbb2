"""Removed devices announced unpaired: their retained availability cleared on the broker.

An empty retained availability means "unpaired" (docs/mqtt.md); without it a removed device's
last "online"/"offline" stays on the broker for ever. A removal is seen only at the first start
without the device (hub/registrations.py `removed`), and the hub may restart again before it
reaches the broker (the platform down for a day), so the ids to announce are kept in the store,
state "unpaired_pending" (JSON list of 8-hex-digit ids): added at start, dropped only on the
broker's PUBACK for the clear. The uplink clears them once connected and after every connect
until then (hub/uplink_retained.py `forget_device`). A device configured again under its id
before that is dropped from the list at that start: its availability is its own again.

The PUBACK arrives as an uplink callback, on the hub's event loop (hub/uplink_callbacks.py):
like every other store write of the core, on its one thread (hub/daemon.py).
"""

from __future__ import annotations

import json
import logging

from hub import registrations
from hub.device_settings import stored_devices

log = logging.getLogger("carebeacon.unpaired")

STATE = "unpaired_pending"


class Unpaired:
    def __init__(self, cfg, store, gone: set[int], publisher) -> None:
        """At start, right after registrations.forget_gone (`gone`: its answer), before the
        gone devices' settings are dropped and record() runs (what `removed` reads): the
        store's list, plus the devices removed since the last start, less those configured
        now; each handed to the publisher. Not while the store's state is unknown (its file
        would not open): the file's list, written over once it opens, would be lost."""
        self.store = store
        self.pending: set[int] = set()
        if store.state_unknown:
            return
        before = self._read()
        removed = registrations.removed(cfg, store, gone, stored_devices(store))
        self.pending = (before | removed) - set(cfg.devices)
        if self.pending != before:
            self._write()
        if self.pending:
            log.info("announcing removed devices unpaired once connected: %s",
                     ", ".join(f"{d:08x}" for d in sorted(self.pending)))
        for d in sorted(self.pending):
            publisher.forget_device(d, confirmed=self.confirmed)

    def confirmed(self, device_id: int) -> None:
        """The broker acknowledged the clear of `device_id`'s availability."""
        if device_id in self.pending:
            self.pending.discard(device_id)
            self._write()
            log.info("device %08x announced unpaired (its availability cleared)", device_id)

    def _read(self) -> set[int]:
        blob = self.store.get_state(STATE)
        try:
            return {int(h, 16) for h in json.loads(blob)} if blob else set()
        except (ValueError, TypeError):  # damaged: what it named is not announced
            log.error("stored %s is unusable: %r", STATE, blob[:100])
            return set()

    def _write(self) -> None:
        ids = [f"{d:08x}" for d in sorted(self.pending)]
        self.store.put_state(STATE, json.dumps(ids).encode())
