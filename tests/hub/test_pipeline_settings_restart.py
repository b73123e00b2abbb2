"""A pending setting rides only on a frame's first acknowledgement, also across a hub restart:
a repeat of a frame acknowledged before the restart must not carry it (the device ignores
that ack whole, so the setting would be lost while its write "succeeded")."""

from __future__ import annotations

from hub import contract
from shared import frame as F


def test_a_repeat_heard_after_a_restart_carries_no_setting(home):
    _, seq = home.send(0xA1B2, F.T_HEARTBEAT)
    first = home.last_ack(0xA1B2)
    assert first.setting == F.S_HEARTBEAT_MIN  # hub.toml's heartbeat, pending at every start
    home.restart()  # the device did not hear that ack, or did: the hub cannot know
    home.send(0xA1B2, F.T_HEARTBEAT, seq=seq, attempt=1)
    again = home.last_ack(0xA1B2)
    assert (again.seq, again.status, again.setting) == (seq, first.status, F.S_NONE)
    home.core.ack_written(0xA1B2, again.setting, True)
    home.send(0xA1B2, F.T_HEARTBEAT)  # a new frame: its first ack carries the setting
    assert (home.last_ack(0xA1B2).setting, home.last_ack(0xA1B2).value) == (F.S_HEARTBEAT_MIN, 60)


def test_an_alarm_stored_before_a_restart_gets_settings_only_on_new_frames(home):
    req = contract.Request("settings", "t1", device_id=0xA1B2, settings=((F.S_SUMMARY_MIN, 10),))
    home.core.on_request(req)
    _, seq = home.send(0xA1B2, F.T_SOS)
    home.core.ack_written(0xA1B2, home.last_ack(0xA1B2).setting, True)
    home.restart()
    home.send(0xA1B2, F.T_SOS, seq=seq, attempt=3)
    assert home.last_ack(0xA1B2).setting == F.S_NONE
    home.send(0xA1B2, F.T_HEARTBEAT)
    assert home.last_ack(0xA1B2).setting != F.S_NONE
