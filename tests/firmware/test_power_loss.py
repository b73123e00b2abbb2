"""Power loss at any moment never repeats a sequence number and never loses an alarm."""

import pytest
from hypothesis import given, settings, strategies as st
from simkit import MIN, SEC, Rig

from firmware.hal import WAKE_WATCHDOG
from firmware.hal.sim import PowerLoss
from shared.frame import F_WATCHDOG_RESET, T_FAULT, T_SOS


def cut_at_commit(rig, when, nth):
    """Cut the power around the nth NVS write (before: not committed; after: committed)."""
    count = [0]

    def hook(key, value, phase):
        if phase == when:
            count[0] += 1
            if count[0] == nth:
                rig.plat.nvs_hook = None
                raise PowerLoss()

    rig.plat.nvs_hook = hook


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("nth", [1, 2, 3])
def test_power_loss_during_the_block_commit(when, nth):
    rig = Rig("button", heartbeat_min=1)
    cut_at_commit(rig, when, nth)
    rig.run(70 * MIN)  # ~70 frames: three block reservations
    assert rig.unique() == ""
    seqs = sorted({f.seq for f in rig.frames()})
    assert len(seqs) >= 60


@settings(deadline=None, max_examples=25)
@given(
    events=st.lists(
        st.tuples(
            st.integers(0, 100 * MIN),  # when
            st.sampled_from(["power", "watchdog", "press", "commit-before", "commit-after"]),
            st.integers(50, 20 * SEC),  # how long (power off, press)
        ),
        max_size=12,
    )
)
def test_random_power_losses_never_repeat_a_number(events):
    rig = Rig("button", heartbeat_min=2)
    for t, kind, length in sorted(events):
        rig.run_until(max(rig.now, t))
        if kind == "power":
            if rig.dev.state != "off":
                rig.dev.power_loss(length)
        elif kind == "watchdog":
            if rig.dev.state in ("run", "wait"):
                rig.dev._reset(WAKE_WATCHDOG, rig.now)
        elif kind == "press":
            rig.press(rig.now + 10, min(length, 2000))
        else:
            cut_at_commit(rig, kind.split("-")[1], 1)
    rig.run(10 * MIN)
    assert rig.unique() == ""
    assert rig.plat.nvs_writes <= 2 + len(rig.frames()) // 16 + 4 * len(events)


def test_a_pending_sos_survives_a_power_loss():
    rig = Rig("button")
    rig.hub.help_ms = 30 * SEC
    rig.run(10 * SEC)
    rig.hub.down = True
    rig.press(rig.now + SEC, 200)
    rig.run(20 * SEC)  # the SOS is being retried, nobody hears it
    rig.dev.power_loss(5 * SEC)  # batteries out and back in
    rig.hub.down = False
    rig.run(3 * MIN)
    sos = rig.messages(T_SOS)
    assert len(sos) == 1, "re-sent after power-on, with its own number"
    assert rig.plat.nvs["alarms"][1] == 0, "cleared once help was acknowledged"
    assert "HELP" in rig.patterns()
    assert rig.unique() == ""


def test_watchdog_reset_after_a_wake_does_not_roll_numbers_back():
    # Woken from deep sleep, sent a frame, then a watchdog reset: RTC memory still holds
    # the snapshot taken before that sleep. Restoring it again would hand out the same
    # numbers a second time: a snapshot is used once.
    rig = Rig("button", heartbeat_min=1)
    rig.run(2 * MIN)
    while not (rig.dev.state in ("run", "wait") and rig.frames(since=2 * MIN)):
        rig.run(20)  # until awake after a wake, with a frame on the air
    last = max(f.seq for f in rig.frames())
    rig.dev._reset(WAKE_WATCHDOG, rig.now)
    rig.run(3 * MIN)
    assert rig.unique() == ""
    after = [f for f in rig.messages() if f.seq > last]
    assert any(f.mtype == T_FAULT and f.arg >> 16 == F_WATCHDOG_RESET for f in after)
    assert min(f.seq for f in after) >= 33, "numbering restarts at the committed block end"
