"""A pending setting rides only on a frame's first acknowledgement, also across a hub restart:
a repeat of a frame acknowledged before the restart must not carry it (the device ignores
that ack whole, so the setting would be lost while its write "succeeded")."""

from __future__ import annotations

from pipeline_testing import deliver_settings

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


MIN = 60_000


def settings_request(home, transaction, device, **values):
    by_name = {n: sid for n, (sid, _, _) in contract.SETTINGS.items()}
    req = contract.Request("settings", transaction, device_id=device,
                           settings=tuple(sorted((by_name[n], v) for n, v in values.items())))
    home.core.on_request(req)
    assert home.pub.responses[-1][2] == contract.Result.HOLD


def test_the_platforms_heartbeat_wins_over_hub_toml_after_a_restart(home, caplog):
    """hub.toml says 60 min; the platform set 720. A restart must neither send 60 to the
    device again nor supervise it at 2 x 60 + 10 min; the log says why hub.toml's is unused."""
    settings_request(home, "hb", 0xA1B2, heartbeat_interval=720)
    assert deliver_settings(home, 0xA1B2) == {F.S_HEARTBEAT_MIN: 720}
    home.restart()
    assert "device 0000a1b2: heartbeat 720 min set by the platform wins over hub.toml's 60" \
        in caplog.text
    assert home.core.devices[0xA1B2].settings == {F.S_HEARTBEAT_MIN: 720}
    assert home.core.devices[0xC3D4].settings == {F.S_HEARTBEAT_MIN: 30}  # hub.toml's
    assert home.core.home.supervisor.window_ms(0xA1B2) == (2 * 720 + 10) * MIN
    assert deliver_settings(home, 0xA1B2) == {F.S_HEARTBEAT_MIN: 720}
    home.restart()  # again: the stored value stays
    assert home.core.home.supervisor.window_ms(0xA1B2) == (2 * 720 + 10) * MIN


def test_the_platforms_device_settings_are_sent_again_after_a_restart(home):
    """A setting still pending at a restart is not lost; one the device had is sent again
    (like the heartbeat; the device writes its NVS only on a change)."""
    settings_request(home, "s1", None, activity_interval=10, quiet_start=1380)
    settings_request(home, "s2", 0xC3D4, fall_cancel_window=25)
    home.restart()
    assert home.core.devices[0xA1B2].settings == {
        F.S_HEARTBEAT_MIN: 60, F.S_SUMMARY_MIN: 10, F.S_QUIET_START_MIN: 1380}
    assert deliver_settings(home, 0xC3D4) == {
        F.S_HEARTBEAT_MIN: 30, F.S_SUMMARY_MIN: 10, F.S_CANCEL_S: 25, F.S_QUIET_START_MIN: 1380}


def test_a_shorter_heartbeat_pending_at_a_restart_keeps_the_longer_window(home):
    """Shortened from hub.toml's 60 to 15 and the hub restarted before the button heard it:
    the button still reports hourly, so the hub keeps the 60 min window until it has 15."""
    settings_request(home, "hb", 0xA1B2, heartbeat_interval=15)
    home.restart()
    sup = home.core.home.supervisor
    assert home.core.devices[0xA1B2].settings == {F.S_HEARTBEAT_MIN: 15}
    assert sup.window_ms(0xA1B2) == (2 * 60 + 10) * MIN
    assert deliver_settings(home, 0xA1B2) == {F.S_HEARTBEAT_MIN: 15}
    assert sup.window_ms(0xA1B2) == (2 * 15 + 10) * MIN
    home.restart()
    assert home.core.home.supervisor.window_ms(0xA1B2) == (2 * 15 + 10) * MIN


def test_unusable_stored_device_settings_fall_back_to_hub_toml(home):
    home.store.put_state("device_settings", b'{"0000a1b2": {"settings": {"3": 0}}}')
    home.restart()
    assert home.core.devices[0xA1B2].settings == {F.S_HEARTBEAT_MIN: 60}
    assert home.core.home.supervisor.window_ms(0xA1B2) == (2 * 60 + 10) * MIN
