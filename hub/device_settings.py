"""The device settings in force: hub.toml's heartbeat, the platform's settings over it.

hub.toml gives each device its heartbeat interval; a settings request (docs/mqtt.md) may change
it and the other settings a device keeps (docs/protocol.md, "Settings"). Like the inactivity
tuning (hub/home.py), the platform's values are stored (state "device_settings") and win over
hub.toml's after a restart: at every start each device is sent its settings in force again at
its first contact (it may have missed them; it writes its NVS only on a change), and the
supervisor (hub/supervision.py) expects the heartbeat in force.

A device keeps its old heartbeat until it hears the new one. A longer interval is supervised at
once; a shorter one only once the device has it (an acknowledgement carrying it was written),
and until then the old, longer one, so that a change never makes a device look offline. That
longer interval is stored too, so a restart meanwhile does not expect the shorter one early.

The platform may clear a value it set (`null` in the request): hub.toml's heartbeat applies
again (supervised as any change of heartbeat), and a setting hub.toml has no value for goes back
to the devices' own default (DEVICE_DEFAULTS): the device keeps a value it was sent in its NVS,
so it must be sent the default; that default is stored ("clearing") until an acknowledgement
carrying it was written, so a restart meanwhile still sends it.

The stored state is a JSON object: device id (8 hex digits) -> {"settings": {setting id: value},
"heartbeat_was": minutes (only while a shorter heartbeat is on its way), "clearing": {setting
id: default} (only until the device has it)}. A device's entry is dropped at the first start
without its registration (hub/registrations.py): removed, or added again with another key.
"""

from __future__ import annotations

import json
import logging
import re

from hub import contract
from shared import frame as F

log = logging.getLogger("carebeacon.device_settings")

STATE = "device_settings"
_STORED_IDS = range(F.S_HEARTBEAT_MIN, len(F.SETTING_LO))  # the settings a device keeps
# What a device has when nobody set a value (firmware/config.py FIELDS; the heartbeat's is
# hub.toml's). A device provisioned with another value gets these after a clear: the hub
# does not know its config.json, and the platform's value had replaced it anyway.
DEVICE_DEFAULTS = {F.S_SUMMARY_MIN: 15, F.S_CANCEL_S: 20, F.S_QUIET_START_MIN: 1320,
                   F.S_QUIET_END_MIN: 420}


_NAMES = {name: sid for name, (sid, _, _) in contract.SETTINGS.items()}


def _in_bounds(sid: int, v: object) -> bool:
    return type(v) is int and F.SETTING_LO[sid] <= v <= F.SETTING_HI[sid]


class DeviceSettings:
    def __init__(self, cfg, store, forget: set[int] = frozenset()):
        """`forget`: devices whose stored entry goes (registrations gone: hub/registrations)."""
        self.cfg, self.store = cfg, store
        self.platform: dict[int, dict[int, int]] = {}  # device -> setting id -> value
        self.heartbeat_was: dict[int, int] = {}  # device -> minutes it has until it hears less
        self.clearing: dict[int, dict[int, int]] = {}  # device -> setting id -> default to send
        self._load(forget)

    # -- what is in force -------------------------------------------------------------------
    def in_force(self, device_id: int) -> dict[int, int]:
        """Setting id -> value of one configured device: hub.toml's heartbeat, defaults still
        to be sent after a clear, the platform's settings over them. What the device is sent at
        its first contact after a start."""
        return {F.S_HEARTBEAT_MIN: self.cfg.devices[device_id].heartbeat_min,
                **self.clearing.get(device_id, {}), **self.platform.get(device_id, {})}

    def heartbeat_min(self, device_id: int) -> int:
        return self.in_force(device_id)[F.S_HEARTBEAT_MIN]

    def supervised_min(self, device_id: int) -> int:
        """The heartbeat interval to supervise: the one in force, or the longer one the device
        still has while a shorter one is on its way."""
        return max(self.heartbeat_min(device_id), self.heartbeat_was.get(device_id, 0))

    def named(self, device_id: int) -> dict[str, int]:
        """The platform's values for a device by their request names (for `hub status`)."""
        return {name: self.platform[device_id][sid] for name, sid in _NAMES.items()
                if sid in self.platform.get(device_id, {})}

    # -- changes ------------------------------------------------------------------------------
    def set(self, targets: list[int], values: dict[int, int | None]) -> None:
        """The platform's settings (already within their bounds; None: clear its value) for
        these devices: stored."""
        platform = {d: dict(s) for d, s in self.platform.items()}
        clearing = {d: dict(s) for d, s in self.clearing.items()}
        was = dict(self.heartbeat_was)
        for d in targets:
            before = self.supervised_min(d)
            mine, back = platform.setdefault(d, {}), clearing.setdefault(d, {})
            for sid, v in values.items():
                if v is not None:
                    back.pop(sid, None)
                    mine[sid] = v
                elif mine.pop(sid, None) is not None and sid in DEVICE_DEFAULTS:
                    back[sid] = DEVICE_DEFAULTS[sid]  # a value never set needs no undoing
                # (a clear repeated, its default not sent yet: `back` keeps it to send)
            after = mine.get(F.S_HEARTBEAT_MIN, self.cfg.devices[d].heartbeat_min)
            if after < before:
                was[d] = before
            else:
                was.pop(d, None)
        self._save(platform, was, clearing)

    def heard(self, device_id: int, sid: int, value: int) -> bool:
        """An acknowledgement carrying setting `sid` = `value` was written to the device: it
        has that value now. True when the heartbeat interval to supervise changed."""
        clearing = self.clearing
        if self.clearing.get(device_id, {}).get(sid) == value:  # the default is there now
            clearing = {d: dict(s) for d, s in self.clearing.items()}
            del clearing[device_id][sid]
        was = self.heartbeat_was
        before = self.supervised_min(device_id)
        if sid == F.S_HEARTBEAT_MIN and device_id in was:
            was = dict(was)
            if value > self.heartbeat_min(device_id):
                was[device_id] = value  # an older, longer value: the short one still to come
            else:
                del was[device_id]
        if was != self.heartbeat_was or clearing != self.clearing:
            self._save(self.platform, was, clearing)
        return self.supervised_min(device_id) != before

    # -- the store ----------------------------------------------------------------------------
    def _save(self, platform: dict[int, dict[int, int]], was: dict[int, int],
              clearing: dict[int, dict[int, int]]) -> None:
        """Store these and, once stored (or held by the store), take them as the ones in use."""
        platform = {d: s for d, s in platform.items() if s}
        clearing = {d: s for d, s in clearing.items() if s}
        if (platform, was, clearing) == (self.platform, self.heartbeat_was, self.clearing):
            return  # a repeated request: no write
        out: dict[str, dict] = {}
        for d in sorted(set(platform) | set(was) | set(clearing)):
            entry: dict = {"settings": {str(k): v for k, v in sorted(platform.get(d, {}).items())}}
            if d in was:
                entry["heartbeat_was"] = was[d]
            if d in clearing:
                entry["clearing"] = {str(k): v for k, v in sorted(clearing[d].items())}
            out[f"{d:08x}"] = entry
        self.store.put_state(STATE, json.dumps(out, sort_keys=True).encode())
        self.platform, self.heartbeat_was, self.clearing = platform, was, clearing

    def _load(self, forget: set[int]) -> None:
        blob = self.store.get_state(STATE)
        if not blob:
            return
        try:
            platform, was, clearing = _parse(json.loads(blob))
        except ValueError as e:  # a JSONDecodeError is a ValueError
            log.error("stored device settings are unusable (%s): using hub.toml's", e)
            return
        platform = {d: v for d, v in platform.items() if v}
        clearing = {d: v for d, v in clearing.items() if v}
        # a device no longer configured is not waiting for anything
        was = {d: m for d, m in was.items() if d in self.cfg.devices}
        self.platform, self.heartbeat_was, self.clearing = platform, was, clearing
        gone = forget & (set(platform) | set(was) | set(clearing))
        if gone:
            log.info("forgot the platform's settings of %s (registration gone)",
                     ", ".join(f"{d:08x}" for d in sorted(gone)))
            self._save(*({d: v for d, v in m.items() if d not in gone}
                         for m in (platform, was, clearing)))
        for d, dev in sorted(self.cfg.devices.items()):
            hb = self.platform.get(d, {}).get(F.S_HEARTBEAT_MIN)
            if hb is not None and hb != dev.heartbeat_min:  # an installer's edit has no effect
                log.warning(
                    "device %08x: heartbeat %d min set by the platform wins over hub.toml's %d"
                    " (until the platform clears it: heartbeat_interval null)",
                    d, hb, dev.heartbeat_min,
                )


def stored_devices(store) -> set[int]:
    """The devices the stored settings name; none if they are unusable (then unused)."""
    blob = store.get_state(STATE)
    try:
        return set().union(*_parse(json.loads(blob))) if blob else set()
    except ValueError:
        return set()


def _parse(doc: object) -> tuple[dict[int, dict[int, int]], dict[int, int],
                              dict[int, dict[int, int]]]:
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    platform: dict[int, dict[int, int]] = {}
    was: dict[int, int] = {}
    clearing: dict[int, dict[int, int]] = {}
    for hexid, entry in doc.items():
        if not re.fullmatch(r"[0-9a-f]{8}", hexid) or not isinstance(entry, dict):
            raise ValueError(f"bad entry {hexid[:20]!r}")
        d = int(hexid, 16)
        platform[d] = _values(hexid, entry.get("settings", {}))
        if "clearing" in entry:
            clearing[d] = _values(hexid, entry["clearing"])
        if "heartbeat_was" in entry:
            if not _in_bounds(F.S_HEARTBEAT_MIN, entry["heartbeat_was"]):
                raise ValueError(f"{hexid}: heartbeat_was out of bounds")
            was[d] = entry["heartbeat_was"]
    return platform, was, clearing


def _values(hexid: str, values: object) -> dict[int, int]:
    if not isinstance(values, dict):
        raise ValueError(f"{hexid}: settings is not an object")
    out = {}
    for k, v in values.items():
        if not (k.isdigit() and int(k) in _STORED_IDS and _in_bounds(int(k), v)):
            raise ValueError(f"{hexid}: setting {k[:8]}={v!r} out of bounds")
        out[int(k)] = v
    return out
