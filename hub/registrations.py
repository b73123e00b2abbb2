"""Which device registrations the hub's stored state belongs to; forgetting that of gone ones.

A registration is a device id in hub.toml with its key. What the hub keeps about one for its
own use, the device's address (`address:<id>`, hub/pipeline_acks.py) and the platform's settings
for it (state `device_settings`, hub/device_settings.py), is dropped at the first start without
it: the device was removed (`hub device remove`, or by hand), or added again under its id with
another key (another board). A device added again so starts clean; one removed and added back
with its own key before a restart (an undone removal) is the same registration and keeps it.

A removal reaches the hub as it always did: `device remove` edits hub.toml and the secrets file,
and the running hub serves the device until it is restarted. The CLI never writes the store:
the running hub is its only writer (hub/store.py), and keeps these values in memory.

A device removed (not one re-keyed: that is configured still) is also announced unpaired to
the platform, its retained availability cleared (`removed`, hub/unpaired.py).

Kept on purpose: the device's replay window (`replay:<id>`): a board erased and set up again
numbers its frames from 1, which the hub must take for replays, and the installer reads the
window to refuse an id the hub has heard (docs/installer.md); its row in the devices table and
its events (history; alarms are never deleted). The inactivity detector keeps nothing per
device (it learns the whole home's stillness).

Stored as state "registrations": JSON {device id (8 hex digits): fingerprint of its key}, the
fingerprint being 8 bytes of SHA-256 over a label and the key: it tells keys apart and cannot
be worked back to a key.
"""

from __future__ import annotations

import hashlib
import json
import logging

from hub.pipeline_acks import address_state

log = logging.getLogger("carebeacon.registrations")

STATE = "registrations"


def fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"carebeacon registration\0" + key).hexdigest()[:16]


def forget_gone(cfg, store, settings_ids: set[int]) -> set[int]:
    """At start, before anything reads a device's state: the devices whose registration is
    gone (among those recorded, those with stored settings, `settings_ids`, and those the
    store has a row for), their addresses dropped. The caller drops their settings
    (hub/device_settings.py), then calls record(): a hub that stops before that forgets
    them again at its next start."""
    now = _now(cfg)
    before = _recorded(store)
    candidates = set(before) | settings_ids | {row["device_id"] for row in store.devices()}
    # a device with state but no record (kept by a hub before this record) is taken to be the
    # one configured now, if any
    gone = {d for d in candidates if d not in now or before.get(d, now[d]) != now[d]}
    for d in sorted(gone):
        if store.get_state(address_state(d)):
            store.put_state(address_state(d), b"")  # empty: no address (DeviceAcks reads it so)
    if gone & (set(before) | settings_ids):
        log.info("registrations gone since the last start (removed or new key): %s",
                 ", ".join(f"{d:08x}" for d in sorted(gone)))
    return gone


def removed(cfg, store, gone: set[int], settings_ids: set[int]) -> set[int]:
    """Of forget_gone's `gone`, before record(): the devices removed from hub.toml since the
    last start, those it had registered (recorded, or with stored settings: a hub before the
    record). Not one only in the devices table: that one is gone at every start."""
    known = set(_recorded(store, quiet=True)) | settings_ids  # (forget_gone said if damaged)
    return {d for d in gone if d not in cfg.devices and d in known}


def record(cfg, store) -> None:
    """The registrations of this start, once their predecessors' state is forgotten. Not
    while the store's state is unknown (its file would not open at start): this start could
    forget nothing, and its record, written once the file opens, would hide the file's."""
    if store.state_unknown:
        return
    now = _now(cfg)
    if now != _recorded(store):
        store.put_state(STATE, json.dumps({f"{d:08x}": f for d, f in sorted(now.items())})
                        .encode())


def _now(cfg) -> dict[int, str]:
    return {d: fingerprint(cfg.keys[d]) for d in cfg.devices}


def _recorded(store, quiet: bool = False) -> dict[int, str]:
    blob = store.get_state(STATE)
    try:
        doc = json.loads(blob) if blob else {}
        return {int(h, 16): f for h, f in doc.items() if isinstance(f, str)}
    except (ValueError, AttributeError):  # damaged: as if none were recorded
        if not quiet:
            log.error("stored registrations are unusable: taking hub.toml's as the ones before")
        return {}
