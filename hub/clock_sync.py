"""Whether the hub's wall clock has been set by a time service, and fault 203 when it has not.

A Raspberry Pi has no real-time clock: after a power cut it starts at 1970 or at the time
fake-hwclock saved at the last shutdown, and keeps that until NTP reaches a server (no
internet, a blocked port). Meanwhile every event time sent to the platform is wrong by the
length of the outage, the time of day that whole-home inactivity learns by is shifted, and
devices are told a wrong time (quiet hours). The year alone cannot tell (fake-hwclock's time
looks plausible); the kernel can: a time service (systemd-timesyncd, chrony, ntpd) clears
its "unsynchronised" state once it has set the clock, and adjtimex(2) reports it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

TIME_ERROR = 5  # adjtimex(2) return value: the clock is not synchronised
# Raise fault 203 after this long unsynchronised: a time service normally needs well under a
# minute once the network is up; a hub that waits longer needs someone to look.
UNSYNC_GRACE_MS = 15 * 60_000

_TIMEX_BYTES = 512  # >= sizeof(struct timex) on every Linux ABI (208 on 64-bit)
_libc = None


def kernel_synced() -> bool | None:
    """The kernel's answer (adjtimex with no change requested, allowed to any user): False
    while no time service has synchronised the clock, True once one has; None when it cannot
    be asked (not Linux, no libc)."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        timex = ctypes.create_string_buffer(_TIMEX_BYTES)  # modes 0: only read
        state = _libc.adjtimex(timex)
    except (OSError, AttributeError, TypeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


class ClockWatch:
    """Feed `(now_ms, synced)` about once a second (monotonic ms; synced as kernel_synced
    gives it); returns +1 when fault 203 should be raised (unsynchronised for
    UNSYNC_GRACE_MS without a break, and not synchronised since the hub started), -1 when it
    should be cleared, else 0. None ("cannot tell") changes nothing.

    Once synchronised, a later "unsynchronised" is no fault: the kernel sets it again after
    about 9 h without a time server (its error bound passes 16 s: an internet outage), while
    the clock, set once, drifts by seconds a day."""

    def __init__(self, grace_ms: int = UNSYNC_GRACE_MS):
        self.grace_ms = grace_ms
        self.unsynced_since: int | None = None
        self.raised = False
        self.was_synced = False

    def update(self, now_ms: int, synced: bool | None) -> int:
        if synced is None:
            return 0
        if synced or self.was_synced:
            self.was_synced = True
            self.unsynced_since = None
            if self.raised:
                self.raised = False
                return -1
            return 0
        if self.unsynced_since is None:
            self.unsynced_since = now_ms
        if not self.raised and now_ms - self.unsynced_since >= self.grace_ms:
            self.raised = True
            return 1
        return 0
