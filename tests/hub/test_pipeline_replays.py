"""Replayed recordings of a device's adverts (review finding 2; docs/protocol.md, "Replay
protection"): refused below the replay window with one fault an hour per device and class, not
one per advert; never moving the address acknowledgements go to; and never keeping a dead
device "online", while a live device that only repeats an unacknowledged alarm stays online.
Real store, real device codecs (an attacker can only resend recorded bytes).
"""

from __future__ import annotations

from pipeline_testing import MIN, Home, addressed, advert

from shared import frame as F

BUTTON, PIR = 0xA1B2, 0xC3D4
DEV_ADDR = "AA:BB:CC:00:B2:01"
EVIL = "DE:AD:BE:EF:00:01"
HOUR = 60 * MIN




def events(home: Home, type_: str) -> dict[str, dict]:
    """Published events of a type by ref (the recorder also sees re-publications)."""
    return {m["ref"]: m for m in home.published(type_)}


def test_a_flood_of_replays_below_the_window_is_one_fault_an_hour(home):
    """demo8: 500 replays of two recorded adverts stored and published 500 fault events."""
    acks = addressed(home)
    # recorded early, never heard by the hub (one it stores is a duplicate, below)
    old = [advert(home, BUTTON, s, F.T_HEARTBEAT) for s in (1, 2)]
    old_sos = advert(home, BUTTON, 3, F.T_SOS)
    for s in range(4, 2100):  # the device's life goes on: 1..3 are now below its window
        assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, s, F.T_HEARTBEAT), -60)
    n_events = home.store.stats()["events"]
    n_acks = len(acks)
    for i in range(500):
        assert home.core.on_frame(EVIL, old[i % 2], -40) == "too_old"
    assert home.store.stats()["events"] == n_events + 1
    [fault] = events(home, "fault").values()
    assert fault["fault"]["name"] == "replay_too_old" and fault["device"]["id"] == "0000a1b2"
    assert "seq 1" in fault["fault"]["text"]
    assert home.core.counters["too_old"] == 500
    assert home.core.counters["too_old_unreported"] == 499
    assert home.core.devices[BUTTON].too_old == 500
    # an alarm from below the window is its own class: reported at once, then counted too
    assert home.core.on_frame(EVIL, old_sos, -40) == "too_old"
    assert home.core.on_frame(EVIL, old_sos, -40) == "too_old"
    assert len(events(home, "fault")) == 2
    assert "an alarm" in list(events(home, "fault").values())[1]["fault"]["text"]
    # nothing refused was acknowledged, and the acks still go to the device
    assert len(acks) == n_acks and home.core.devices[BUTTON].address == DEV_ADDR
    # an hour on, while it lasts: one more report, with the count of what came in between
    home.clock.advance(HOUR)
    assert home.core.on_frame(EVIL, old[0], -40) == "too_old"
    faults = list(events(home, "fault").values())
    assert len(faults) == 3 and "499 more since the last report" in faults[2]["fault"]["text"]


def test_a_stored_alarm_retried_from_below_the_window_hears_its_status(home):
    """Each fresh start of a device skips numbers (firmware/apps/core.py FRESH_SKIP): after a
    few, an SOS it still retries for its DELIVERED or HELP is below the window its later
    frames moved on. Refused as too old, the elder never learned help was called."""
    acks = addressed(home)
    sos = advert(home, BUTTON, 1, F.T_SOS)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "stored"
    home.core.on_delivered(home.store.ref_for(BUTTON, 1))
    for s in range(2, 2200, 97):  # four power-ons' heartbeats, then more
        assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, s, F.T_HEARTBEAT), -60)
    assert home.core.windows[BUTTON].top > 2049
    home.clock.advance(MIN)
    retry = advert(home, BUTTON, 1, F.T_SOS, age_ms=0, attempt=9)  # age restarted at power-on
    assert home.core.on_frame(DEV_ADDR, retry, -60) == "duplicate"
    assert acks[-1] == (BUTTON, DEV_ADDR, 1, F.ACK_DELIVERED)
    assert not events(home, "fault") and home.core.counters["too_old_stored"] == 1
    # another frame under that number, or one never stored, is still refused and reported
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 1, F.T_TEST), -60) == "too_old"
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 3, F.T_SOS), -60) == "too_old"
    assert [f["fault"]["name"] for f in events(home, "fault").values()] == ["replay_too_old"]


def test_a_replayed_duplicate_is_acknowledged_where_it_came_from_but_moves_nothing(home):
    """The acks' address is the device's last NEW frame's: a replay soon after the frame
    gets its ack (it cannot be told from the device's retry), the device's pushes stay its
    own."""
    acks = addressed(home)
    sos = advert(home, BUTTON, 1, F.T_SOS)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "stored"
    home.clock.advance(5_000)
    assert home.core.on_frame(EVIL, sos, -40) == "duplicate"  # a recording, replayed
    assert acks[-1] == (BUTTON, EVIL, 1, F.ACK_STORED)
    assert home.core.devices[BUTTON].address == DEV_ADDR
    home.core.on_delivered(home.store.ref_for(BUTTON, 1))  # pushed to the device at once...
    assert acks[-1] == (BUTTON, DEV_ADDR, 1, F.ACK_DELIVERED)  # ...not to the replayer
    # the device's own retry is answered where it is
    retry = advert(home, BUTTON, 1, F.T_SOS, age_ms=8_000, attempt=4)
    assert home.core.on_frame(DEV_ADDR, retry, -60) == "duplicate"
    assert acks[-1] == (BUTTON, DEV_ADDR, 1, F.ACK_DELIVERED)


def test_stale_replays_from_elsewhere_are_dropped_unacknowledged(home):
    """demo2 (security review 2, finding 2): a recording replayed hours later from ever new
    addresses had the hub open an ack connection for each, holding up the device's own acks.
    A stale copy is acknowledged only where the device is; a fresh one (the device's retry,
    heard from another address) still is wherever it came from."""
    acks = addressed(home)
    rec = advert(home, BUTTON, 1, F.T_HEARTBEAT)
    assert home.core.on_frame(DEV_ADDR, rec, -60) == "stored"
    home.clock.advance(6 * HOUR)
    n = len(acks)
    for i in range(200):
        addr = "5A:%02X:%02X:00:00:01" % (i >> 8, i & 0xFF)
        assert home.core.on_frame(addr, rec, -40) == "duplicate"
    assert len(acks) == n
    assert home.core.counters["duplicate_stale_dropped"] == 200
    assert home.core.on_frame(DEV_ADDR, rec, -60) == "duplicate"  # where the device is: as before
    assert acks[n:] == [(BUTTON, DEV_ADDR, 1, F.ACK_DELIVERED)]
    assert home.core.counters["duplicate_stale"] == 201
    sos = advert(home, BUTTON, 2, F.T_SOS)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "stored"
    home.clock.advance(2_000)
    retry = advert(home, BUTTON, 2, F.T_SOS, age_ms=2_000, attempt=3)
    assert home.core.on_frame(EVIL, retry, -60) == "duplicate"
    assert acks[-1] == (BUTTON, EVIL, 2, F.ACK_STORED)


def test_replays_inside_the_window_do_not_keep_a_dead_device_online(home):
    """The PIR (heartbeat 30 min: offline after 70 min of silence) dies; a recording of its
    adverts replayed every 5 min must not hold off `supervision_missing`."""
    recorded = []
    for s in range(1, 4):
        data = advert(home, PIR, s, F.T_ACTIVITY)
        assert home.core.on_frame("AA:BB:CC:00:D4:01", data, -60) == "stored"
        recorded.append(data)
        home.clock.advance(5 * MIN)
    for i in range(40):  # 200 min of replays, all still inside the replay window
        assert home.core.on_frame(EVIL, recorded[i % 3], -40) == "duplicate"
        home.clock.advance(5 * MIN)
        home.core.tick()
    missing = [m for m in events(home, "supervision_missing").values()]
    assert [m["device"]["id"] for m in missing].count("0000c3d4") == 1
    assert home.core.home.supervisor.state(PIR) == "offline"
    assert home.core.counters["duplicate_stale"] == 40
    assert home.core.devices[PIR].address == "AA:BB:CC:00:D4:01"


def test_a_recording_of_an_old_alarm_copy_is_no_sign_of_life_later(home):
    """Review finding: the slack grew with the copy's age, so a copy recorded at 16 h of age
    (an alarm retried through a long outage) replayed 50 min later still counted (1 h of
    slack), and a day-old one for more than a day. The slack now grows with the time since the
    hub first heard the frame: the drift of a device's clock between two of its copies."""
    data = advert(home, BUTTON, 1, F.T_SOS, age_ms=16 * 60 * MIN)
    assert home.core.on_frame(DEV_ADDR, data, -60) == "stored"
    home.clock.advance(50 * MIN)
    before = home.core.devices[BUTTON].last_mono_ms
    home.core.on_frame(EVIL, data, -60)
    assert home.core.devices[BUTTON].last_mono_ms == before
    assert home.core.counters["duplicate_stale"] == 1


def test_an_old_alarms_own_retries_still_count_with_a_slow_clock(home):
    # the control: the same 16-hour-old alarm, then the device's own retries for an hour,
    # its clock 5 % slow
    age = 16 * 60 * MIN
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 1, F.T_SOS, age_ms=age), -60) == \
        "stored"
    for minute in range(1, 61):
        home.clock.advance(MIN)
        age += MIN * 95 // 100
        retry = advert(home, BUTTON, 1, F.T_SOS, age_ms=age, attempt=minute)
        assert home.core.on_frame(DEV_ADDR, retry, -60) == "duplicate"
    assert home.core.counters["duplicate_stale"] == 0


def test_a_device_that_only_repeats_an_unacknowledged_alarm_stays_online(home):
    """Routine frames are held back while an alarm has no acknowledgement at all (an ack path
    that fails): the device's only signs of life are the alarm's retries, every minute at the
    retry ceiling, their age growing with them. They count, also after a hub restart (the
    event's time then comes from the store), and with the device's clock 5 % slow."""
    sos_seq = 1
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, sos_seq, F.T_SOS), -60) == "stored"
    age = 0
    for minute in range(1, 301):  # 5 h: the button's window is 2 x 60 + 10 min
        home.clock.advance(MIN)
        age += MIN * 95 // 100  # the device's ticks run 5 % slow
        retry = advert(home, BUTTON, sos_seq, F.T_SOS, age_ms=age, attempt=minute % 256)
        assert home.core.on_frame(DEV_ADDR, retry, -60) == "duplicate"
        home.core.tick()
        if minute == 150:
            home.restart()
    buttons = [m for m in events(home, "supervision_missing").values() if "device" in m]
    assert [m["device"]["id"] for m in buttons].count("0000a1b2") == 0
    assert home.core.home.supervisor.state(BUTTON) == "online"
    assert home.core.counters["duplicate_stale"] == 0


def test_after_a_restart_with_the_wall_clock_behind_the_devices_retries_are_still_acked(home):
    """A Pi without a real-time clock restarts after a power cut at its last saved time (10 min
    behind) and without internet (no NTP): every genuine retry of the stored SOS then looks
    stale by the wall clock, and the hub does not know the device's address yet (it learns it
    from a new frame). The retry must still get its status: only a copy from somewhere else
    than a known device address is dropped."""
    sos = advert(home, BUTTON, 1, F.T_SOS)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "stored"
    home.restart()
    acks = addressed(home)
    home.clock.wall -= 10 * MIN  # the clock went back to the last saved time
    home.clock.advance(30_000)
    retry = advert(home, BUTTON, 1, F.T_SOS, age_ms=30_000, attempt=4)
    assert home.core.on_frame(DEV_ADDR, retry, -60) == "duplicate"
    assert acks == [(BUTTON, DEV_ADDR, 1, F.ACK_STORED)]
