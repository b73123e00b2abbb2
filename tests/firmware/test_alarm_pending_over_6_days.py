"""An alarm unacknowledged for longer than ticks can span (2**29 ms, 6.2 days).

A tick difference wraps after 6.2 days (shared/ticks.py). An SOS retried through a
week-long hub outage used to be dated by ticks_diff(now, event tick): its age wrapped
(the hub dated the alarm a week late), and once HELP came the hold time, also a raw tick
difference, read negative: the alarm stayed "active" for days and a new emergency press
replayed the old status instead of sending an SOS. Ages are now kept as minutes plus a
short tick distance (firmware/apps/outbox.py), the hold time latched while exact.
"""

import pytest
from simkit import HOUR, MIN, SEC, Rig, bare_outbox

from shared.frame import T_SOS, Codec, decode_age, encode_age
from shared.ticks import ticks_add

DAY = 24 * HOUR


@pytest.mark.heavy
def test_an_sos_retried_for_a_week_keeps_its_age_and_ends_after_help():
    rig = Rig("button", heartbeat_min=1440)
    rig.hub.help_ms = 30 * SEC
    rig.run(10 * SEC)
    rig.hub.down = True
    t_press = rig.now + SEC
    rig.press(t_press, 200)
    rig.run(7 * DAY)
    rig.hub.down = False
    rig.run(10 * MIN)
    t, f = [(t, f) for t, _n, f in rig.hub.frames if f.mtype == T_SOS][0]
    assert t - t_press > 7 * DAY - MIN
    assert abs(t - f.age_ms - t_press) <= 2 * MIN, "the hub dates the alarm at the press"
    assert "HELP" in rig.patterns(since=t)
    t2 = rig.now + 5 * MIN  # past the 15 min hold since the press (a week ago)
    rig.press(t2, 200)
    rig.run(10 * MIN)
    sos = rig.messages(T_SOS)
    assert len(sos) == 2, "a new emergency is a new SOS, not the old one's status"
    pats = rig.patterns(since=t2)
    assert pats[0] == "SENDING" and "HELP" in pats
    assert rig.unique() == ""



def test_the_outbox_folds_old_ages_into_minutes_and_saturates_with_the_field():
    ob = bare_outbox(1)
    t0 = 0x3FFFF000  # near the tick wrap
    ob.put(0, 5, T_SOS, 0, t0, ticks_add(t0, -600))  # pressed 0.6 s before it was queued
    now = t0
    for _ in range(30 * 24):  # a month of hourly wakes (a sleeping button wakes more often)
        now = ticks_add(now, HOUR)
        ob.expire(now)
        m, ms = ob.age(0, now)
        assert 0 <= ms < DAY + HOUR
    age = decode_age(encode_age(ms, m))
    assert age == 0x7FFF * MIN, "saturates at 22.7 days as the protocol says"
    ob.put(1, 6, T_SOS, 0, now, now)
    for _ in range(8 * 24):
        now = ticks_add(now, HOUR)
        ob.expire(now)
    m, ms = ob.age(1, now)
    assert decode_age(encode_age(ms, m)) == 8 * DAY
    buf = bytearray(24)
    c = Codec(1, bytes(16))
    f = c.verify(c.encode(buf, 6, T_SOS, 0, ms, 1, m))
    assert f.age_ms == 8 * DAY
