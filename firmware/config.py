"""The provisioning config: /config.json on the device.

Written by the installer at provisioning; identity and key never come from
anywhere else. Every problem raises ConfigError naming the file and the key,
and never prints the key itself (it is a secret: docs/protocol.md).

    {"device_id": 305419896, "key": "<32 hex digits>", "kind": "button",
     "board": "esp32c3-supermini-button", "heartbeat_min": 60, ...}

Optional keys and their defaults are in FIELDS: (name, default, lo, hi, why).
Settings the hub sends in acknowledgements (heartbeat, summary interval,
cancel window, quiet hours) override these and are kept in NVS.
"""

import json

from firmware.board import KINDS
from shared.frame import (
    S_CANCEL_S,
    S_HEARTBEAT_MIN,
    S_QUIET_END_MIN,
    S_QUIET_START_MIN,
    S_SUMMARY_MIN,
    SETTING_HI as _HI,
    SETTING_LO as _LO,
)

# The settings the hub may change have the bounds the hub checks (shared/frame.py).
FIELDS = (
    ("heartbeat_min", 60, _LO[S_HEARTBEAT_MIN], _HI[S_HEARTBEAT_MIN],
     "heartbeat interval; <= 1 day keeps tick maths exact"),
    ("summary_min", 15, _LO[S_SUMMARY_MIN], _HI[S_SUMMARY_MIN],
     "activity summary interval (8-bit minutes field)"),
    ("cancel_s", 20, _LO[S_CANCEL_S], _HI[S_CANCEL_S], "fall cancel window (issue: 10-30 s)"),
    ("quiet_start_min", 1320, _LO[S_QUIET_START_MIN], _HI[S_QUIET_START_MIN],
     "buzzer quiet hours start (22:00)"),
    ("quiet_end_min", 420, _LO[S_QUIET_END_MIN], _HI[S_QUIET_END_MIN],
     "buzzer quiet hours end (07:00)"),
    ("low_battery_pct", 20, 5, 50, "below this: LOW_BATTERY to the hub and the elder"),
    ("sos_hold_min", 15, 1, 120, "after an SOS, presses replay its status instead of a new SOS"),
    ("help_wait_min", 60, 5, 1440, "after DELIVERED, how long to keep asking for HELP"),
    ("not_worn_min", 60, 5, 1440, "no movement this long: not worn"),
    ("still_min", 30, 5, 720, "PIR: stillness before a MOTION message"),
    ("routine_attempts", 8, 1, 50, "a routine message gives up after this many attempts"),
    ("adv_window_ms", 1500, 300, 10000, "advertise this long after each attempt"),
    ("hub_linger_ms", 1000, 0, 10000, "keep the radio on this long after the last send"),
)


class ConfigError(ValueError):
    pass


class Config:
    def __init__(self):
        self.path = ""
        self.device_id = 0
        self.key = b""
        self.kind = ""
        self.board = ""
        self.log = False
        self.fingerprint = 0  # folded from the file text: snapshots from another config are refused
        # Declared one by one (not from FIELDS) so type checkers see them; parse() fills them.
        self.heartbeat_min = 60
        self.summary_min = 15
        self.cancel_s = 20
        self.quiet_start_min = 1320
        self.quiet_end_min = 420
        self.low_battery_pct = 20
        self.sos_hold_min = 15
        self.help_wait_min = 60
        self.not_worn_min = 60
        self.still_min = 30
        self.routine_attempts = 8
        self.adv_window_ms = 1500
        self.hub_linger_ms = 1000


def _err(path, key, msg):
    return ConfigError("%s: %s: %s" % (path, key, msg))


def fingerprint(text):
    h = 5381
    for ch in text:
        h = ((h * 33) ^ ord(ch)) & 0xFFFFFF  # 24 bits: stays a small int
    return h


def parse(d, path="/config.json", text=""):
    if type(d) is not dict:
        raise ConfigError("%s: the file must hold one JSON object" % path)
    c = Config()
    c.path = path
    c.fingerprint = fingerprint(text)
    did = d.get("device_id")
    if type(did) is not int or not 1 <= did <= 0xFFFFFFFF:
        raise _err(path, "device_id", "must be an integer 1..4294967295 (assigned at provisioning)")
    c.device_id = did
    key = d.get("key")
    if type(key) is not str or len(key) != 32:
        raise _err(path, "key", "must be 32 hex digits (the device's 128-bit key); value not shown")
    kb = bytearray(16)
    for i in range(16):
        hi = "0123456789abcdef".find(key[2 * i].lower())
        lo = "0123456789abcdef".find(key[2 * i + 1].lower())
        if hi < 0 or lo < 0:
            raise _err(path, "key", "must be hex digits only; value not shown")
        kb[i] = hi * 16 + lo
    c.key = bytes(kb)
    kind = d.get("kind")
    if kind not in KINDS:
        raise _err(path, "kind", "must be one of %s, got %r" % (", ".join(KINDS), kind))
    c.kind = kind
    board = d.get("board")
    if type(board) is not str or not board or "/" in board or "." in board:
        raise _err(path, "board", "must be a board file name without .json (see boards/)")
    c.board = board
    log = d.get("log", False)
    if type(log) is not bool:
        raise _err(path, "log", "must be true or false")
    c.log = log
    for name, default, lo, hi, why in FIELDS:
        v = d.get(name, default)
        if type(v) is not int or not lo <= v <= hi:
            raise _err(path, name, "must be an integer %d..%d (%s), got %r" % (lo, hi, why, v))
        setattr(c, name, v)
    known = ("device_id", "key", "kind", "board", "log") + tuple(f[0] for f in FIELDS)
    for k in d:
        if k not in known:
            raise _err(path, k, "unknown key (typo?)")
    return c


def load(path="/config.json"):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("%s: cannot read the config file: provision the device first" % path)
    try:
        d = json.loads(text)
    except ValueError:
        # The parser's message may quote the text, and the text holds the key.
        raise ConfigError("%s: not valid JSON" % path)
    return parse(d, path, text)
