"""Fault 203 `clock_unsynchronised` (hub/clock_sync.py): raised when no time service has set
the hub's clock for 15 min (a Pi without RTC after a power cut, no internet), cleared once one
has; and an unsynchronised wall clock never makes a replayed recording a sign of life."""

from __future__ import annotations

from pipeline_testing import MIN, FakeClock, Home

from hub.clock_sync import UNSYNC_GRACE_MS, ClockWatch, kernel_synced
from shared import frame as F

BUTTON = 0xA1B2
ADDR = "AA:BB:CC:00:B2:01"


class TimeServiceClock(FakeClock):
    """A test clock whose time service the test switches on and off."""

    def __init__(self):
        super().__init__()
        self.ntp: bool | None = False

    def synced(self):
        return self.ntp


def test_the_kernel_can_be_asked_without_privileges():
    assert kernel_synced() in (True, False, None)  # never raises (this machine: unsynced)


def test_the_watch_raises_after_the_grace_without_a_break_and_clears_once():
    w = ClockWatch(grace_ms=1000)
    assert w.update(0, False) == 0
    assert w.update(999, False) == 0
    assert w.update(500_000, None) == 0  # cannot tell: nothing changes
    assert w.update(1000, False) == 1
    assert w.update(2000, False) == 0  # raised once
    assert w.update(3000, True) == -1
    assert w.update(4000, True) == 0
    # once set, a later "unsynchronised" (the kernel's after ~9 h without a server) is none
    assert w.update(5000, False) == 0 and w.update(999_999, False) == 0


def test_the_hub_raises_fault_203_and_its_restoral(tmp_path, schemas):
    home = Home(tmp_path, schemas)
    home.clock = home.core.clock = TimeServiceClock()
    try:
        for _ in range(UNSYNC_GRACE_MS // MIN):
            home.core.tick()
            home.clock.advance(MIN)
        assert not home.published("fault")
        home.core.tick()
        [fault] = home.published("fault")
        assert (fault["fault"]["code"], fault["fault"]["name"]) == (203, "clock_unsynchronised")
        home.clock.advance(MIN)
        home.core.tick()
        assert len(home.published("fault")) == 1
        home.clock.ntp = True
        home.core.tick()
        [restoral] = home.published("restoral")
        assert restoral["fault"]["code"] == 203
    finally:
        home.store.close()


def test_after_a_restart_an_unsynchronised_clock_makes_no_copy_a_sign_of_life(tmp_path, schemas):
    """After a restart the wall clock is the only judge of a copy's freshness; unset, it
    cannot judge: a recording replayed as late as the clock is behind would look fresh."""
    home = Home(tmp_path, schemas)
    try:
        sos = bytes(home.codec[BUTTON].encode(bytearray(24), 1, F.T_SOS))
        assert home.core.on_frame(ADDR, sos, -60) == "stored"
        home.restart()
        clock = TimeServiceClock()
        clock.mono, clock.wall = home.clock.mono, home.clock.wall
        home.clock = home.core.clock = clock
        retry = bytes(home.codec[BUTTON].encode(bytearray(24), 1, F.T_SOS, 0, 0, 2))
        assert home.core.on_frame(ADDR, retry, -60) == "duplicate"
        assert home.core.counters["duplicate_stale"] == 1  # cannot tell: not a sign of life
        clock.ntp = True
        assert home.core.on_frame(ADDR, retry, -60) == "duplicate"
        assert home.core.counters["duplicate_stale"] == 1  # now it can: fresh
    finally:
        home.store.close()
