"""What the hub may change, and the local time it tells: kept from acknowledgements.

Settings arrive one per verified acknowledgement (docs/protocol.md, "Settings"); they
start from the provisioning config, are clamped to the same limits as the config
(shared/frame.py SETTING_LO/HI, which the hub never exceeds) and kept in NVS so a power
loss does not undo them. The time of day arrives in every acknowledgement; it drives the
buzzer's quiet hours and is dropped when older than 4 days (ticks only measure 6.2 days
reliably). All state is ints and bools: it goes into the RTC snapshot with the rest.
"""

from shared.compat import const
from shared.frame import (
    S_CANCEL_S,
    S_HEARTBEAT_MIN,
    S_QUIET_END_MIN,
    S_QUIET_START_MIN,
    S_SUMMARY_MIN,
    SETTING_HI as _HI,
    SETTING_LO as _LO,
)
from shared.ticks import ticks_diff

_TOD_MAX_MS = const(345600000)  # 4 days
_KEYS = ("", "hb_min", "sum_min", "cancel_s", "q_start", "q_end")  # NVS keys by setting id


class Settings:
    def __init__(self, hal, cfg):
        self.hal = hal
        self.hb_min = cfg.heartbeat_min
        self.summary_min = cfg.summary_min
        self.cancel_s = cfg.cancel_s
        self.quiet_start = cfg.quiet_start_min
        self.quiet_end = cfg.quiet_end_min
        self.tod_valid = False
        self.tod_s = 0
        self.tod_at = 0
        self.weekday = 7
        for sid in range(1, 6):
            v = hal.nvs_get(_KEYS[sid], -1)
            if _LO[sid] <= v <= _HI[sid]:
                self._set(sid, v)

    def _set(self, sid, v):
        if sid == S_HEARTBEAT_MIN:
            self.hb_min = v
        elif sid == S_SUMMARY_MIN:
            self.summary_min = v
        elif sid == S_CANCEL_S:
            self.cancel_s = v
        elif sid == S_QUIET_START_MIN:
            self.quiet_start = v
        elif sid == S_QUIET_END_MIN:
            self.quiet_end = v

    def apply(self, sid, value):
        """Take setting `sid` (clamped); True if it changed. NVS errors raise OSError.
        Ids this device does not keep (the pre-alarm, newer ones) change nothing here."""
        if not 0 < sid < len(_KEYS):
            return False
        v = value
        if v < _LO[sid]:
            v = _LO[sid]
        elif v > _HI[sid]:
            v = _HI[sid]
        old = (self.hb_min, self.summary_min, self.cancel_s, self.quiet_start,
               self.quiet_end)[sid - 1]
        self._set(sid, v)
        if self.hal.nvs_get(_KEYS[sid], -1) != v:
            self.hal.nvs_set(_KEYS[sid], v)
        return old != v

    def clock(self, tod_s, weekday, now_ms):
        self.tod_valid = True
        self.tod_s = tod_s % 86400
        self.tod_at = now_ms
        self.weekday = weekday

    def expire(self, now_ms):
        if self.tod_valid and ticks_diff(now_ms, self.tod_at) > _TOD_MAX_MS:
            self.tod_valid = False

    def tod(self, now_ms):
        """Local seconds since midnight from the hub's clock, -1 if unknown."""
        if not self.tod_valid:
            return -1
        return (self.tod_s + ticks_diff(now_ms, self.tod_at) // 1000) % 86400

    def quiet(self, now_ms):
        """Buzzer quiet hours now? False while the time is unknown: sound stays on."""
        t = self.tod(now_ms)
        if t < 0 or self.quiet_start == self.quiet_end:
            return False
        m = t // 60
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= m < self.quiet_end
        return m >= self.quiet_start or m < self.quiet_end
