"""A restart inside the fall cancel window opens it again: the fall is still confirmed, or
cancelled by the wearer (firmware/apps/bracelet.py, NVS key "fall_win").

Review finding: the window lived in RAM only. A power cut or a watchdog reset inside it (a
brown-out from the impact) forgot it: the FALL_SUSPECTED had been stored by the hub and left
the alarm record, so nothing was re-sent, and the fall was never confirmed.
"""

import pytest
from simkit import MIN, SEC, Rig
from test_app_bracelet import Wrist

from firmware.hal import WAKE_WATCHDOG
from shared.frame import T_FALL_CANCELLED, T_FALL_CONFIRMED, T_FALL_SUSPECTED


def fall_then_restart(how):
    """Falls at 2:00 and lies still; restarts 5 s into the 20 s window."""
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN))
    rig.run_until(2 * MIN + 2 * SEC)
    while not rig.messages(T_FALL_SUSPECTED):
        rig.run(SEC)
    rig.run(5 * SEC)
    assert rig.app().window
    cut = rig.now
    if how == "power cut":
        rig.dev.power_loss(20)
    else:
        rig.dev._reset(WAKE_WATCHDOG, rig.now)
    return rig, cut


@pytest.mark.parametrize("how", ["power cut", "watchdog"])
def test_a_restart_in_the_window_opens_it_again_and_the_fall_is_confirmed(how):
    rig, cut = fall_then_restart(how)
    rig.run(5 * MIN)
    susp = rig.messages(T_FALL_SUSPECTED)
    conf = rig.messages(T_FALL_CONFIRMED)
    assert len(susp) == 1 and len(conf) == 1, rig.patterns(since=2 * MIN)
    assert conf[0].seq - conf[0].arg == susp[0].seq, "it supersedes that fall's early warning"
    assert "FALL_WINDOW" in rig.patterns(since=cut + 1), "the wearer is asked again"
    assert rig.plat.nvs.get("fall_win") == 0, "closed with the window"


def test_im_fine_after_the_restart_cancels_the_early_warning():
    rig, cut = fall_then_restart("power cut")
    rig.press(cut + 5 * SEC, 3500)
    rig.run(5 * MIN)
    susp = rig.messages(T_FALL_SUSPECTED)
    canc = rig.messages(T_FALL_CANCELLED)
    assert not rig.messages(T_FALL_CONFIRMED)
    assert len(canc) == 1 and canc[0].seq - canc[0].arg == susp[0].seq


def test_a_restart_after_the_window_closed_opens_nothing():
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN).at(2 * MIN + 50 * SEC, "worn"))
    rig.hub.help_ms = 30 * SEC
    rig.run_until(5 * MIN)
    assert len(rig.messages(T_FALL_CONFIRMED)) == 1
    rig.dev.power_loss(20)
    rig.run(10 * MIN)
    assert "FALL_WINDOW" not in rig.patterns(since=5 * MIN)
    assert len(rig.messages(T_FALL_CONFIRMED)) == 1


def test_a_window_nvs_cannot_record_still_runs_its_course():
    rig = Rig("bracelet", imu=Wrist().fall(2 * MIN))
    rig.plat.nvs_fail = True  # every NVS write fails from now on
    rig.run_until(3 * MIN)
    assert len(rig.messages(T_FALL_SUSPECTED)) == 1 and len(rig.messages(T_FALL_CONFIRMED)) == 1
