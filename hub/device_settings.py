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

The stored state is a JSON object: device id (8 hex digits) -> {"settings": {setting id: value},
"heartbeat_was": minutes (only while a shorter heartbeat is on its way)}. Devices no longer in
hub.toml keep their entry (a device added again gets the platform's settings back).
"""

from __future__ import annotations

import json
import logging
import re

from shared import frame as F

log = logging.getLogger("carebeacon.device_settings")

STATE = "device_settings"
_STORED_IDS = range(F.S_HEARTBEAT_MIN, len(F.SETTING_LO))  # the settings a device keeps


def _in_bounds(sid: int, v: object) -> bool:
    return type(v) is int and F.SETTING_LO[sid] <= v <= F.SETTING_HI[sid]


class DeviceSettings:
    def __init__(self, cfg, store):
        self.cfg, self.store = cfg, store
        self.platform: dict[int, dict[int, int]] = {}  # device -> setting id -> value
        self.heartbeat_was: dict[int, int] = {}  # device -> minutes it has until it hears less
        self._load()

    # -- what is in force -------------------------------------------------------------------
    def in_force(self, device_id: int) -> dict[int, int]:
        """Setting id -> value of one configured device: hub.toml's heartbeat, the platform's
        settings over it. What the device is sent at its first contact after a start."""
        return {F.S_HEARTBEAT_MIN: self.cfg.devices[device_id].heartbeat_min,
                **self.platform.get(device_id, {})}

    def heartbeat_min(self, device_id: int) -> int:
        return self.in_force(device_id)[F.S_HEARTBEAT_MIN]

    def supervised_min(self, device_id: int) -> int:
        """The heartbeat interval to supervise: the one in force, or the longer one the device
        still has while a shorter one is on its way."""
        return max(self.heartbeat_min(device_id), self.heartbeat_was.get(device_id, 0))

    # -- changes ------------------------------------------------------------------------------
    def set(self, targets: list[int], values: dict[int, int]) -> None:
        """The platform's settings (already within their bounds) for these devices: stored."""
        platform = {d: dict(s) for d, s in self.platform.items()}
        was = dict(self.heartbeat_was)
        for d in targets:
            before = self.supervised_min(d)
            platform.setdefault(d, {}).update(values)
            after = platform[d].get(F.S_HEARTBEAT_MIN, self.cfg.devices[d].heartbeat_min)
            if after < before:
                was[d] = before
            else:
                was.pop(d, None)
        self._save(platform, was)
        self.platform, self.heartbeat_was = platform, was

    def heard(self, device_id: int, heartbeat_min: int) -> bool:
        """An acknowledgement carrying `heartbeat_min` was written to the device: it has that
        interval now. True when the interval to supervise changed."""
        if device_id not in self.heartbeat_was:
            return False
        before = self.supervised_min(device_id)
        was = dict(self.heartbeat_was)
        if heartbeat_min > self.heartbeat_min(device_id):
            was[device_id] = heartbeat_min  # an older, longer value: the short one still to come
        else:
            del was[device_id]
        if was != self.heartbeat_was:
            self._save(self.platform, was)
            self.heartbeat_was = was
        return self.supervised_min(device_id) != before

    # -- the store ----------------------------------------------------------------------------
    def _save(self, platform: dict[int, dict[int, int]], was: dict[int, int]) -> None:
        out: dict[str, dict] = {}
        for d in sorted(set(platform) | set(was)):
            entry: dict = {"settings": {str(k): v for k, v in sorted(platform.get(d, {}).items())}}
            if d in was:
                entry["heartbeat_was"] = was[d]
            out[f"{d:08x}"] = entry
        self.store.put_state(STATE, json.dumps(out, sort_keys=True).encode())

    def _load(self) -> None:
        blob = self.store.get_state(STATE)
        if not blob:
            return
        try:
            platform, was = _parse(json.loads(blob))
        except ValueError as e:  # a JSONDecodeError is a ValueError
            log.error("stored device settings are unusable (%s): using hub.toml's", e)
            return
        # a device no longer configured is not waiting for anything (its settings are kept)
        self.platform = platform
        self.heartbeat_was = {d: m for d, m in was.items() if d in self.cfg.devices}
        for d, dev in sorted(self.cfg.devices.items()):
            hb = platform.get(d, {}).get(F.S_HEARTBEAT_MIN)
            if hb is not None and hb != dev.heartbeat_min:  # an installer's edit has no effect
                log.warning(
                    "device %08x: heartbeat %d min set by the platform wins over hub.toml's %d"
                    " (only a new settings request changes it)", d, hb, dev.heartbeat_min,
                )


def _parse(doc: object) -> tuple[dict[int, dict[int, int]], dict[int, int]]:
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    platform: dict[int, dict[int, int]] = {}
    was: dict[int, int] = {}
    for hexid, entry in doc.items():
        if not re.fullmatch(r"[0-9a-f]{8}", hexid) or not isinstance(entry, dict):
            raise ValueError(f"bad entry {hexid[:20]!r}")
        d = int(hexid, 16)
        values = entry.get("settings", {})
        if not isinstance(values, dict):
            raise ValueError(f"{hexid}: settings is not an object")
        platform[d] = {}
        for k, v in values.items():
            if not (k.isdigit() and int(k) in _STORED_IDS and _in_bounds(int(k), v)):
                raise ValueError(f"{hexid}: setting {k[:8]}={v!r} out of bounds")
            platform[d][int(k)] = v
        if "heartbeat_was" in entry:
            if not _in_bounds(F.S_HEARTBEAT_MIN, entry["heartbeat_was"]):
                raise ValueError(f"{hexid}: heartbeat_was out of bounds")
            was[d] = entry["heartbeat_was"]
    return platform, was
