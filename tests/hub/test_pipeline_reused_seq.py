"""A frame under a number the device used before for another frame (security review 2,
finding 1; docs/protocol.md, "Sequence numbers" and "Replay protection"): a device may repeat
numbers after NVS refused a block end and the power failed. Such a frame is no retransmission:
never acknowledged (the ack would carry the other frame's status), reported as fault 209
`seq_reused` once an hour per device and class (an alarm at alarm priority), counted, and a
sign of life. Real store, real device codecs.
"""

from __future__ import annotations

from pipeline_testing import MIN, Home, addressed, advert

from shared import frame as F

BUTTON, PIR = 0xA1B2, 0xC3D4
DEV_ADDR = "AA:BB:CC:00:B2:01"
EVIL = "DE:AD:BE:EF:00:01"
HOUR = 60 * MIN
BEAT_ARG = (80 << 16) | (1 << 8) | 150




def reused_faults(home: Home) -> list[dict]:
    refs = {m["ref"]: m for m in home.published("fault") if m["fault"]["name"] == "seq_reused"}
    return list(refs.values())


def test_a_new_sos_under_an_old_heartbeats_number_is_not_acknowledged_and_raised(home):
    """demo1: the SOS was answered DELIVERED (the heartbeat's status) and dropped."""
    acks = addressed(home)
    beat = advert(home, BUTTON, 7, F.T_HEARTBEAT, arg=BEAT_ARG)
    assert home.core.on_frame(DEV_ADDR, beat, -60) == "stored"
    assert acks == [(BUTTON, DEV_ADDR, 7, F.ACK_DELIVERED)]  # local: delivered at once
    home.clock.advance(10 * MIN)
    sos = advert(home, BUTTON, 7, F.T_SOS)  # after a power loss, the same number again
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "reused"
    assert len(acks) == 1  # not told DELIVERED: the device shows "not delivered"
    assert home.store.get(home.store.ref_for(BUTTON, 7)).mtype == F.T_HEARTBEAT
    [fault] = reused_faults(home)
    assert fault["fault"]["code"] == 209 and fault["device"]["id"] == "0000a1b2"
    assert fault["priority"] == 1  # a manual alarm's: an operator calls the elder
    text = fault["fault"]["text"]
    assert "SOS seq 7" in text and "HEARTBEAT" in text and "call the elder" in text
    assert home.store.get(fault["ref"]).alarm  # forwarded first, never evicted
    assert home.core.counters["seq_reused"] == 1 and home.core.devices[BUTTON].reused == 1
    # only the device's key makes it: a sign of life
    assert home.core.devices[BUTTON].last_mono_ms == home.clock.mono
    assert not home.published("manual_alarm")  # the number is taken: not forwarded


def test_a_genuine_retransmission_is_still_acknowledged(home):
    acks = addressed(home)
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 1, F.T_SOS), -60) == "stored"
    assert home.core.on_frame(DEV_ADDR, advert(home, PIR, 1, F.T_HEARTBEAT, BEAT_ARG), -60)
    home.clock.advance(3_000)
    retry = advert(home, BUTTON, 1, F.T_SOS, age_ms=3_000, attempt=4)
    assert home.core.on_frame(DEV_ADDR, retry, -60) == "duplicate"
    assert acks[-1] == (BUTTON, DEV_ADDR, 1, F.ACK_STORED)
    beat = advert(home, PIR, 1, F.T_HEARTBEAT, BEAT_ARG, age_ms=3_000, attempt=2)
    assert home.core.on_frame(DEV_ADDR, beat, -60) == "duplicate"
    assert acks[-1] == (PIR, DEV_ADDR, 1, F.ACK_DELIVERED)
    assert home.core.counters["seq_reused"] == 0 and not home.published("fault")


def test_a_different_arg_under_the_same_number_is_reused_too(home):
    acks = addressed(home)
    assert home.core.on_frame(DEV_ADDR, advert(home, PIR, 3, F.T_ACTIVITY, 0x0505), -60)
    n = len(acks)
    assert home.core.on_frame(DEV_ADDR, advert(home, PIR, 3, F.T_ACTIVITY, 0x0905), -60) == (
        "reused"
    )
    assert len(acks) == n
    [fault] = reused_faults(home)
    assert fault["priority"] == 4 and "call the elder" not in fault["fault"]["text"]
    assert not home.store.get(fault["ref"]).alarm


def test_the_fault_is_one_an_hour_per_device_and_class_with_the_count(home):
    """The device retries its unacknowledged SOS for ever (every minute at the ceiling)."""
    acks = addressed(home)
    for s in (7, 8):
        assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, s, F.T_HEARTBEAT, BEAT_ARG), -60)
    n = len(acks)
    for minute in range(59):
        sos = advert(home, BUTTON, 7, F.T_SOS, age_ms=minute * MIN, attempt=minute)
        assert home.core.on_frame(DEV_ADDR, sos, -60) == "reused"
        home.clock.advance(MIN)
    assert len(reused_faults(home)) == 1
    assert home.core.counters["seq_reused_unreported"] == 58
    # a routine frame is its own class: reported at once
    act = advert(home, BUTTON, 8, F.T_ACTIVITY, 0x0305)
    assert home.core.on_frame(DEV_ADDR, act, -60) == "reused"
    assert len(reused_faults(home)) == 2
    home.clock.advance(MIN)  # an hour after the first report: the next, with the count
    sos = advert(home, BUTTON, 7, F.T_SOS, age_ms=60 * MIN, attempt=60)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "reused"
    faults = reused_faults(home)
    assert len(faults) == 3 and "58 more since the last report" in faults[2]["fault"]["text"]
    assert faults[2]["priority"] == 1
    assert len(acks) == n  # none of them acknowledged
    # the device's only frames were the reused SOS's retries: still online
    home.core.tick()
    assert home.core.home.supervisor.state(BUTTON) == "online"


def test_after_a_restart_it_is_reported_at_once_and_still_told_apart(home):
    """As fault 204: the hourly limit is in memory, so a restart reports the next one;
    the comparison reads the stored record."""
    acks = addressed(home)
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 7, F.T_HEARTBEAT, BEAT_ARG), -60)
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 7, F.T_SOS), -60) == "reused"
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 7, F.T_SOS, attempt=1), -60)
    assert len(reused_faults(home)) == 1
    home.clock.advance(MIN)
    home.restart()
    acks = addressed(home)
    sos = advert(home, BUTTON, 7, F.T_SOS, age_ms=MIN, attempt=9)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "reused"
    assert not acks and len(reused_faults(home)) == 2
    # a genuine retransmission of the stored heartbeat after the restart: acknowledged
    beat = advert(home, BUTTON, 7, F.T_HEARTBEAT, BEAT_ARG, age_ms=MIN, attempt=3)
    assert home.core.on_frame(DEV_ADDR, beat, -60) == "duplicate"
    assert acks == [(BUTTON, DEV_ADDR, 7, F.ACK_DELIVERED)]


def test_an_alarm_under_the_number_of_a_pruned_routine_frame_is_raised(home):
    """Alarms are never pruned: an alarm duplicate with no record at all reused the number
    of a routine frame the store no longer holds."""
    acks = addressed(home)
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 7, F.T_HEARTBEAT, BEAT_ARG), -60)
    home.clock.advance(10 * MIN)
    home.store.retention_days = 1
    home.store.prune(home.clock.wall_ms() + 2 * 86_400_000)
    assert home.store.get(home.store.ref_for(BUTTON, 7)) is None
    n = len(acks)
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 7, F.T_SOS), -60) == "reused"
    assert len(acks) == n
    [fault] = reused_faults(home)
    assert fault["priority"] == 1 and "its frame not in the store" in fault["fault"]["text"]


def test_a_recording_of_a_reused_frame_replayed_later_is_no_sign_of_life(home):
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 7, F.T_HEARTBEAT, BEAT_ARG), -60)
    sos = advert(home, BUTTON, 7, F.T_SOS)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "reused"
    heard = home.core.devices[BUTTON].last_mono_ms
    home.clock.advance(30 * MIN)
    assert home.core.on_frame(EVIL, sos, -40) == "reused"  # the same bytes, half an hour on
    assert home.core.devices[BUTTON].last_mono_ms == heard
    assert home.core.counters["seq_reused_stale"] == 1


def test_a_second_alarm_under_another_reused_number_is_reported_at_once(home):
    """The hourly limit keeps one frame's retries to one report; another SOS 20 minutes later
    under the next reused number is another call for help and must not wait 40 minutes."""
    for s in (7, 8):
        assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, s, F.T_HEARTBEAT, BEAT_ARG), -60)
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 7, F.T_SOS), -60) == "reused"
    home.clock.advance(20 * MIN)
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 8, F.T_SOS), -60) == "reused"
    faults = reused_faults(home)
    assert len(faults) == 2 and all(f["priority"] == 1 for f in faults)
    assert "SOS seq 8" in faults[1]["fault"]["text"]
    home.clock.advance(MIN)  # its retries are rate-limited as before
    retry = advert(home, BUTTON, 8, F.T_SOS, age_ms=MIN, attempt=1)
    assert home.core.on_frame(DEV_ADDR, retry, -60) == "reused"
    assert len(reused_faults(home)) == 2
