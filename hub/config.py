"""The hub's configuration: one TOML file plus a separate secrets file.

`hub.toml` holds identity, the platform connection, the radio, inactivity
settings and the devices; `secrets.toml` (mode 0600, checked) holds only the
device keys. The hub's TLS private key must not be readable by other users either
(checked: 0600, or 0640 with the hub's group), and the TLS files need an mqtts:// URL
(`[platform]`: hub/config_platform.py). Every invalid value is refused at start with the
file, the key and what is wrong, e.g.

    /etc/carebeacon/hub.toml: devices[2].kind: 'buton' is not one of button, pir, bracelet

Keys never appear in errors, logs or `repr()`.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hub import contract
from hub.config_platform import (  # noqa: F401  (HUB_USER_ENV, Platform: re-exported)
    HUB_USER_ENV,
    Platform,
    platform as _platform,
)
from shared import frame as F

KINDS = ("button", "pir", "bracelet")
# The MQTT contract's lengths of device.room and device.location (docs/mqtt/schemas/event.json):
# every event of a device, and the hub's own events about it, carry both.
ROOM_MAX, LOCATION_MAX = 64, 200
_TEXT_MAX = {"room": ROOM_MAX, "location": LOCATION_MAX}


def device_text_problem(key: str, value: str) -> str | None:
    """Why `value` cannot be a device's `key` ("room" or "location"), or None."""
    limit = _TEXT_MAX[key]
    if len(value) > limit:
        return (f"{len(value)} characters, at most {limit} fit the platform's messages"
                f" (device.{key}, docs/mqtt.md)")
    return None


class ConfigError(ValueError):
    """A config problem, with the file and key it is about."""


class AccessError(ConfigError):
    """A file (or its directory) this user may not read or write: another user's, or root's."""


@dataclass(frozen=True)
class Device:
    id: int
    kind: str
    room: str
    location: str
    elder: str
    heartbeat_min: int
    entrance: bool  # its motion counts as the front door for away detection

    @property
    def hex(self) -> str:
        return f"{self.id:08x}"


@dataclass(frozen=True)
class Radio:
    adapter: str
    scanning: str
    silence_restart_s: int
    silence_reset_s: int
    ack_connect_timeout_s: float


@dataclass(frozen=True)
class InactivitySettings:
    enabled: bool
    values: dict[str, int] = field(default_factory=dict)  # keyword arguments of shared.inactivity


@dataclass(frozen=True)
class Config:
    path: Path
    hub_id: str
    county: str
    household: str
    data_dir: Path
    platform: Platform
    radio: Radio
    inactivity: InactivitySettings
    devices: dict[int, Device]
    keys: dict[int, bytes] = field(repr=False)


class _Reader:
    """Typed access to one TOML table that names the file and key in every error."""

    def __init__(self, path: Path, table: dict, where: str):
        self.path, self.table, self.where = path, table, where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self._name(key)}: {why}")

    def get(self, key, typ, default=..., *, lo=None, hi=None, choices=None):
        if key not in self.table:
            if default is ...:
                raise self.fail(key, "missing (required)")
            return default
        v = self.table[key]
        numeric = typ is int or isinstance(typ, tuple)  # (int, float): a number
        if numeric and isinstance(v, bool) or not isinstance(v, typ):
            raise self.fail(key, f"{v!r} is not {_TYPE_NAMES.get(typ, 'a number')}")
        if isinstance(v, float) and not math.isfinite(v):  # nan passes every bound check
            raise self.fail(key, f"{v!r} is not a finite number")
        if lo is not None and v < lo or hi is not None and v > hi:
            raise self.fail(key, f"{v!r} is outside {lo}..{hi}")
        if choices is not None and v not in choices:
            raise self.fail(key, f"{v!r} is not one of {', '.join(map(str, choices))}")
        return v

    def sub(self, key: str) -> _Reader:
        v = self.table.get(key, {})
        if not isinstance(v, dict):
            raise self.fail(key, "must be a table")
        return _Reader(self.path, v, self._name(key))

    def unknown(self, known: set[str]) -> None:
        extra = sorted(set(self.table) - known)
        if extra:
            raise self.fail(extra[0], "unknown key (a typo?)")


_TYPE_NAMES = {int: "an integer", str: "a string", bool: "true or false", float: "a number"}


def _load_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except PermissionError:
        raise AccessError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 (byte {e.start}): TOML files are UTF-8") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a file: give the file (hub.toml)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None


def _radio(r: _Reader) -> Radio:
    r.unknown({"adapter", "scanning", "silence_restart_s", "silence_reset_s",
               "ack_connect_timeout_s"})
    restart = r.get("silence_restart_s", int, 90, lo=10, hi=3600)  # Home Assistant's figure
    return Radio(
        adapter=r.get("adapter", str, "hci0"),
        scanning=r.get("scanning", str, "active", choices=("active", "passive")),
        silence_restart_s=restart,
        silence_reset_s=r.get("silence_reset_s", int, 300, lo=restart, hi=86400),
        ack_connect_timeout_s=float(r.get("ack_connect_timeout_s", (int, float), 10, lo=1, hi=60)),
    )


# Bounds the platform may tune within (docs/inactivity.md); keyword -> (lo, hi)
INACTIVITY_BOUNDS = contract.INACTIVITY_BOUNDS


def _inactivity(r: _Reader) -> InactivitySettings:
    r.unknown({"enabled", *INACTIVITY_BOUNDS})
    vals = {}
    for k, (lo, hi) in INACTIVITY_BOUNDS.items():
        v = r.get(k, int, None, lo=lo, hi=hi)
        if v is not None:
            vals[k] = v
    if contract.inactivity_conflict(vals):
        raise r.fail("floor_min", "must not exceed ceiling_min")
    return InactivitySettings(enabled=r.get("enabled", bool, True), values=vals)


def _device(r: _Reader) -> Device:
    r.unknown({"id", "kind", "room", "location", "elder", "heartbeat_min", "entrance"})
    raw = r.get("id", str)
    if not re.fullmatch(r"[0-9a-fA-F]{8}", raw) or int(raw, 16) == 0:
        raise r.fail("id", f"{raw!r} is not 8 hex digits (and not 00000000)")
    text = {}
    for key in ("room", "location"):
        text[key] = r.get(key, str, "")
        why = device_text_problem(key, text[key])
        if why:
            raise r.fail(key, why)
    return Device(
        id=int(raw, 16),
        kind=r.get("kind", str, choices=KINDS),
        room=text["room"],
        location=text["location"],
        elder=r.get("elder", str, ""),
        heartbeat_min=r.get("heartbeat_min", int, 60, lo=F.SETTING_LO[F.S_HEARTBEAT_MIN],
                            hi=F.SETTING_HI[F.S_HEARTBEAT_MIN]),  # the devices' bounds
        entrance=r.get("entrance", bool, False),
    )


def load_secrets(path: Path, *, check_mode: bool = True) -> dict[int, bytes]:
    """Device keys from the secrets file: `[keys]` with `"<8 hex id>" = "<32 hex key>"`."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{path}: secrets file not found") from None
    except PermissionError:
        raise AccessError(f"{path}: permission denied") from None
    if check_mode and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read device keys; "
            f"run: chmod 600 {path}")
    r = _Reader(path, _load_toml(path), "")
    r.unknown({"keys"})
    keys = {}
    for n, (dev, hexkey) in enumerate(r.sub("keys").table.items(), 1):
        if not re.fullmatch(r"[0-9a-fA-F]{8}", dev):  # not echoed: it may be a key pasted there
            raise ConfigError(f"{path}: keys: entry {n} is not named by an 8-hex-digit device id"
                              " (write: id = \"key\", one per line)")
        if not isinstance(hexkey, str) or not re.fullmatch(r"[0-9a-fA-F]{32}", hexkey):
            raise ConfigError(f"{path}: keys.{dev}: key must be 32 hex digits (128 bits)")
        keys[int(dev, 16)] = bytes.fromhex(hexkey)
    return keys


def secrets_path(path: Path, given: str | Path | None, setting: str = "secrets.toml") -> Path:
    """The secrets file of the hub.toml at `path`: `given` (a command-line path: as it is,
    relative to the working directory) else hub.toml's `secrets_file`, relative to hub.toml."""
    return Path(given) if given else path.parent / setting


def load(path: str | Path, secrets: str | Path | None = None, *, check_mode=True,
         strict=True, with_keys=True) -> Config:
    """Read and check `hub.toml` (and its secrets file); raise ConfigError on any problem.
    strict=False (`hub run`): a TLS file missing, unreachable or with a mode that shares the
    key goes into `platform.file_problems`, and a connection hub.toml forbids (plain MQTT to
    another machine, TLS files under a plain URL) into `platform.blocked`, instead: a hub that
    does not run stores no alarm, one without its uplink stores them all and sends them once
    it is fixed (hub/config_platform.py)."""
    path = Path(path)
    r = _Reader(path, _load_toml(path), "")
    r.unknown({"hub", "platform", "radio", "inactivity", "devices", "secrets_file"})
    hub = r.sub("hub")
    hub.unknown({"id", "county", "household", "data_dir"})
    hub_id = hub.get("id", str)
    county = hub.get("county", str)
    for k, v in (("id", hub_id), ("county", county)):
        try:
            contract.check_id(v, k)
        except ValueError:
            raise hub.fail(k, f"{v!r}: use lowercase letters, digits, '-' or '_', starting with a"
                              " letter or digit (it is an MQTT topic level and the hub's"
                              " certificate name)") from None
    household = hub.get("household", str)  # the platform's reference of the home
    if not contract.household_ok(household):
        raise hub.fail("household", f"{household!r}: letters, digits and . _ : - only")
    base = path.parent
    data_dir = Path(hub.get("data_dir", str, "/var/lib/carebeacon"))
    if not data_dir.is_absolute():
        data_dir = base / data_dir
    devs = r.table.get("devices", [])
    if not isinstance(devs, list):
        raise r.fail("devices", "must be an array of tables ([[devices]])")
    devices: dict[int, Device] = {}
    for i, d in enumerate(devs):
        if not isinstance(d, dict):
            raise r.fail(f"devices[{i}]", "must be a table")
        dev = _device(_Reader(path, d, f"devices[{i}]"))
        if dev.id in devices:
            raise r.fail(f"devices[{i}].id", f"{dev.hex} is listed twice")
        devices[dev.id] = dev
    sec_path = secrets_path(path, secrets, r.get("secrets_file", str, "secrets.toml"))
    # with_keys=False (`hub status`): the hub's group may read hub.toml, not the keys
    keys = (load_secrets(sec_path, check_mode=check_mode)
            if with_keys and (devices or os.path.exists(sec_path)) else {})
    for dev in devices.values() if with_keys else ():
        if dev.id not in keys:
            raise ConfigError(f"{sec_path}: keys.{dev.hex}: missing key for a configured device")
    return Config(
        path=path, hub_id=hub_id, county=county, household=household,
        data_dir=data_dir, platform=_platform(r.sub("platform"), base, check_mode, strict),
        radio=_radio(r.sub("radio")), inactivity=_inactivity(r.sub("inactivity")),
        devices=devices, keys=keys,
    )
