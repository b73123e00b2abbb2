"""shared/inactivity.py time handling: the day rolls over at midnight, not on clock steps;
stillness saturates and negative steps count as zero."""

from inactivity_testing import DAY, H, M, history

from shared.inactivity import SRC_AWAY, Inactivity
from shared.ticks import MAX_DIFF, wrap


def test_day_rolls_over_at_midnight_not_on_small_clock_steps():
    det = Inactivity()
    det.tick(0, 23 * H)
    det.tick(M, 23 * H + M)
    assert history(det)[1] == 0
    det.tick(2 * M, 22 * H + 2 * M)  # clock set back an hour (DST): same day
    assert history(det)[1] == 0
    det.tick(3 * M, 23 * H + 59 * M)
    det.tick(4 * M, 0)  # midnight
    assert history(det)[1] == 1
    det.tick(5 * M, 11 * H)  # clock jumps forward 11 h: same day
    assert history(det)[1] == 1
    det.tick(6 * M, 13 * M)  # and back again (11 h): same day
    assert history(det)[1] == 1
    det.tick(7 * M + 2 * DAY + H, H + 14 * M)  # hub silent for two days and an hour
    assert history(det)[1] == 3
    for i, tod in enumerate((9 * H, 16 * H, 23 * H)):  # clock jumps forward 7 h at a time
        det.tick((9 + i) * M, tod)
    assert history(det)[1] == 3
    det.tick(12 * M, 6 * H)  # and once more, past midnight: a new day
    assert history(det)[1] == 4


def test_stillness_saturates_and_negative_steps_count_as_zero():
    det = Inactivity()
    det.activity(0, 0, SRC_AWAY)
    now = 0
    for _ in range(4):
        now = wrap(now + MAX_DIFF)
        det.tick(now, 0)
    assert det.still_ms == MAX_DIFF
    det = Inactivity()
    det.tick(1000, 0)
    det.tick(500, 0)
    assert det.still_ms == 0
