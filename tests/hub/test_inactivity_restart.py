"""Whole-home inactivity across a hub restart (update, crash, power blip), with the real store:
an alarm raised before it is still cancelled by a sign of life after it (and stops repeating),
a pre-alarm still sounds on the devices for the time it had left; and the state an older hub
stored (the detector's blob alone) still loads, its alarm's ref found in the store."""

from __future__ import annotations

import logging

from pipeline_testing import MIN

from shared import frame as F, inactivity as I

PIR, BUTTON = 0xC3D4, 0xA1B2


def _until(home, what: str, limit_min: int = 13 * 60 + 30) -> None:
    """A still home, minute by minute, until the pre-alarm or the alarm."""
    w = home.core.home
    for _ in range(limit_min):
        home.clock.advance(MIN)
        home.core.tick()
        if (w.prealarm_until if what == "prealarm" else w.alarm_ref) is not None:
            return
    raise AssertionError(f"no {what}")


def _alarm(home) -> str:
    home.send(PIR, F.T_ACTIVITY, arg=(4 << 8) | 5)  # someone moves, then nothing
    _until(home, "alarm")
    ref = home.core.home.alarm_ref
    home.core.on_delivered(ref)  # the platform has it: repeated until an operator acks
    return ref


def _prealarm_minutes(home) -> int | None:
    home.send(BUTTON, F.T_HEARTBEAT)
    ack = home.last_ack(BUTTON)
    return ack.value if ack.setting == F.S_PREALARM else None


def test_a_sign_of_life_after_a_restart_cancels_the_alarm_and_its_repeats(home):
    ref = _alarm(home)
    home.restart()  # a crash: nothing saved at shutdown
    assert home.core.home.detector.state == I.ST_ALARM and ref in home.core.repeat_at
    n = len(home.pub.events)
    home.send(PIR, F.T_MOTION, arg=800)  # the elder gets up
    (cancel,) = [m for _, m in home.pub.events[n:] if m["type"] == "cancel"]
    assert cancel["cancels"] == ref
    assert home.core.home.alarm_ref is None and ref not in home.core.repeat_at
    for _ in range(30):  # nothing repeats the alarm after the sign of life
        home.clock.advance(MIN)
        home.core.tick()
    assert [r for r, _ in home.pub.events[n:]].count(ref) == 0
    home.restart()  # and the cleared state is what is stored
    assert home.core.home.alarm_ref is None and home.core.home.detector.state == I.ST_IDLE


def test_a_prealarm_goes_on_after_a_restart_for_the_time_it_had_left(home):
    home.send(PIR, F.T_ACTIVITY, arg=(4 << 8) | 5)
    _until(home, "prealarm")
    for _ in range(4):
        home.clock.advance(MIN)
        home.core.tick()
    assert _prealarm_minutes(home) == 6
    home.core.home.save(home.clock.mono_ms())  # the daemon's orderly stop
    home.clock.advance(30 * MIN)  # off for a while: like the detector's, its time stands still
    home.restart()
    assert _prealarm_minutes(home) == 6  # "are you all right?" still asked
    for _ in range(5):
        home.clock.advance(MIN)
        home.core.tick()
    assert not home.published("automatic_alarm") and _prealarm_minutes(home) == 1
    home.clock.advance(MIN)
    home.core.tick()
    assert len(home.published("automatic_alarm")) == 1  # the detector's alarm, on time
    assert _prealarm_minutes(home) == 0  # over: the button told it was (hub/prealarm_notice.py)


def test_a_prealarm_survives_a_crash_too(home):
    home.send(PIR, F.T_ACTIVITY, arg=(4 << 8) | 5)
    _until(home, "prealarm")
    home.clock.advance(2 * MIN)
    home.restart()  # nothing saved since the pre-alarm began: the whole of it again
    assert _prealarm_minutes(home) == 10
    home.send(PIR, F.T_MOTION, arg=800)  # answered: moving about
    assert _prealarm_minutes(home) == 0 and not home.published("cancel")  # 0: it is over


def test_the_state_an_older_hub_stored_still_loads_its_alarm_found_in_the_store(home, caplog):
    ref = _alarm(home)
    # an older hub stored the detector's blob alone (no ref, no pre-alarm time left)
    home.store.put_state("inactivity", home.core.home.detector.to_bytes())
    caplog.set_level(logging.INFO, logger="carebeacon")
    home.restart()
    assert "unusable" not in caplog.text
    assert home.core.home.detector.state == I.ST_ALARM and home.core.home.alarm_ref == ref
    home.send(PIR, F.T_MOTION, arg=800)
    (cancel,) = home.published("cancel")
    assert cancel["cancels"] == ref and ref not in home.core.repeat_at


def test_an_older_hubs_state_during_a_prealarm_sounds_a_whole_one(home):
    home.send(PIR, F.T_ACTIVITY, arg=(4 << 8) | 5)
    _until(home, "prealarm")
    home.store.put_state("inactivity", home.core.home.detector.to_bytes())
    home.restart()
    assert _prealarm_minutes(home) == 10


def test_an_unreadable_or_newer_state_is_refused_loudly_not_fatally(home, caplog):
    from hub.home import pack_state

    home.send(PIR, F.T_ACTIVITY, arg=(4 << 8) | 5)
    good = home.core.home.detector.to_bytes()
    for blob in (
        pack_state(good, "x", None)[:10],  # cut short
        b"CBHW\x02" + pack_state(good, None, None)[5:],  # a layout from a newer hub
        b"CBHW\x01\x00\x02[]" + good,  # not an object
        pack_state(good, None, None).replace(b'"prealarm_left_ms":null', b'"prealarm_left_ms":"1"'),
    ):
        home.store.put_state("inactivity", blob)
        caplog.clear()
        home.restart()
        assert "inactivity state in the store is unusable" in caplog.text
        assert home.core.home.detector.state == I.ST_IDLE and home.core.home.alarm_ref is None


def test_a_crash_between_the_alarm_and_the_next_save_still_cancels_it(home, monkeypatch):
    w = home.core.home
    monkeypatch.setattr(w, "save", lambda now: None)  # the hub dies right after the alarm's write
    ref = _alarm(home)
    home.restart()
    assert home.core.home.alarm_ref == ref  # stored in the alarm's own write
    n = len(home.pub.events)
    home.send(PIR, F.T_MOTION, arg=800)
    assert [m["cancels"] for _, m in home.pub.events[n:] if m["type"] == "cancel"] == [ref]
