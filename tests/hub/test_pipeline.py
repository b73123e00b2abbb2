"""The hub core: frames from real device codecs through the real store to platform messages
and authenticated acknowledgements. The uplink is a recording stand-in here (the daemon test
runs the real one against mosquitto); every published message is checked against the
contract's JSON Schemas."""

from __future__ import annotations

import json
import os

import pytest

from hub import contract
from hub.config import load
from hub.pipeline import HubCore
from hub.pipeline_outbox import PUMP_MAX_IN_FLIGHT
from hub.store import Store
from shared import frame as F

MIN = 60_000
HUB_TOML = """
[hub]
id = "hub-a"
county = "test-county"
household = "HH-7"
data_dir = "data"
[platform]
url = "mqtt://localhost:1883"
[inactivity]
prealarm_min = 10
[[devices]]
id = "0000a1b2"
kind = "button"
room = "bedroom"
location = "by the bed"
[[devices]]
id = "0000c3d4"
kind = "pir"
room = "living room"
heartbeat_min = 30
"""
KEYS = {0xA1B2: bytes(range(16)), 0xC3D4: bytes(range(16, 32))}


class FakeClock:
    def __init__(self):
        self.mono = 10_000
        self.wall = 1_760_000_000_000
        self.tod_s = 9 * 3600

    def mono_ms(self):
        return self.mono

    def wall_ms(self):
        return self.wall

    def local(self):
        return (self.tod_s + (self.mono - 10_000) // 1000) % 86400, 2, True

    def advance(self, ms):
        self.mono += ms
        self.wall += ms


class Recorder:
    """Stands in for hub.uplink.Uplink: records what the core asks it to send."""

    def __init__(self):
        self.connected = True
        self.events: list[tuple[str, dict]] = []
        self.availability: list[tuple[int, bool]] = []
        self.states: list[str] = []
        self.responses: list[tuple] = []

    def publish_event(self, ref, topic, payload):
        if not self.connected:
            return False
        self.events.append((ref, json.loads(payload)))
        return True

    def publish_availability(self, device_id, online, last_seen=None):
        self.availability.append((device_id, online))

    def publish_state(self, radio, detail=None):
        self.states.append(radio)

    def respond(self, req, result=0, *, text=None, data=None, error=None):
        self.responses.append((req.kind, req.transaction, int(result), text, data))


class Home:
    """A hub core plus the devices' side of the radio."""

    def __init__(self, tmp_path, schemas, toml=HUB_TOML, defer=None):
        (tmp_path / "hub.toml").write_text(toml)
        sec = tmp_path / "secrets.toml"
        sec.write_text("[keys]\n" + "".join(f'"{d:08x}" = "{k.hex()}"\n' for d, k in KEYS.items()))
        os.chmod(sec, 0o600)
        self.cfg = load(tmp_path / "hub.toml")
        self.cfg.data_dir.mkdir(exist_ok=True)
        self.schemas = schemas
        self.clock = FakeClock()
        self.pub = Recorder()
        self.acks: list[tuple[int, bytes, int]] = []
        self.codec = {d: F.Codec(d, k) for d, k in KEYS.items()}
        self.seq = {d: 0 for d in KEYS}
        self.defer = defer
        self.open()

    def open(self):
        self.store = Store(self.cfg.data_dir / "hub.db", hub_id=self.cfg.hub_id)
        self.core = HubCore(
            self.cfg,
            self.store,
            publisher=self.pub,
            clock=self.clock,
            acker=lambda d, addr, data, s: self.acks.append((d, data, s)),
            defer=self.defer,
        )

    def restart(self):
        self.store.close()
        self.open()

    def send(self, dev, mtype, arg=0, age_ms=0, seq=None, key=None, attempt=0):
        if seq is None:
            self.seq[dev] += 1
            seq = self.seq[dev]
        codec = F.Codec(dev, key) if key else self.codec[dev]
        data = bytes(codec.encode(bytearray(24), seq, mtype, arg, age_ms, attempt))
        return self.core.on_frame(f"AA:BB:CC:00:{dev & 0xFF:02X}:01", data, -61), seq

    def last_ack(self, dev):
        d, data, _ = [a for a in self.acks if a[0] == dev][-1]
        return self.codec[dev].verify_ack(data)

    def published(self, type_=None):
        for _, msg in self.pub.events:
            self.schemas.check("event", msg)
        return [m for _, m in self.pub.events if type_ is None or m["type"] == type_]


@pytest.fixture
def home(tmp_path, schemas):
    h = Home(tmp_path, schemas)
    yield h
    h.store.close()


def test_sos_is_stored_acknowledged_published_and_climbs_to_help(home):
    what, seq = home.send(0xA1B2, F.T_SOS, age_ms=1500)
    assert what == "stored"
    ack = home.last_ack(0xA1B2)  # authenticated with the device's key
    assert (ack.seq, ack.status, ack.clock_valid) == (seq, F.ACK_STORED, True)
    assert ack.setting == F.S_HEARTBEAT_MIN and ack.value == 60
    [msg] = home.published("manual_alarm")
    assert msg["ref"] == f"hub-a:0000a1b2:{seq}" and msg["device"]["room"] == "bedroom"
    assert msg["household"] == "HH-7" and msg["rssi"] == -61
    # the event keeps its true time: 1.5 s before it was received
    assert contract.iso_time((home.clock.wall - 1500) / 1000) == msg["event_time"]
    home.core.on_delivered(msg["ref"])
    assert home.last_ack(0xA1B2).status == F.ACK_DELIVERED
    req = contract.parse_request(
        "carebeacon/v1/test-county/hub-a/request/ack",
        json.dumps({"transaction": 7, "ref": msg["ref"]}),
        county="test-county",
        hub_id="hub-a",
    )
    home.core.on_request(req)
    assert home.pub.responses[-1][:3] == ("ack", 7, 0)
    assert home.last_ack(0xA1B2).status == F.ACK_HELP
    assert home.store.get(msg["ref"]).state == 2


def test_retry_of_a_stored_frame_is_acknowledged_again_not_stored_twice(home):
    _, seq = home.send(0xA1B2, F.T_SOS)
    home.core.on_delivered(home.published()[0]["ref"])
    n = len(home.acks)
    what, _ = home.send(0xA1B2, F.T_SOS, seq=seq, attempt=5, age_ms=9000)
    assert what == "duplicate"
    assert len(home.acks) == n + 1 and home.last_ack(0xA1B2).status == F.ACK_DELIVERED
    assert len(home.published("manual_alarm")) == 1
    assert home.store.stats()["events"] == 1 if "events" in home.store.stats() else True


def test_forged_frames_are_refused_counted_and_reported(home):
    for _ in range(10):
        what, _ = home.send(0xA1B2, F.T_SOS, key=os.urandom(16))
        assert what == "refused"
    assert not home.published("manual_alarm") and not home.acks
    assert home.core.devices[0xA1B2].bad_tags == 10
    [fault] = home.published("fault")
    assert fault["fault"]["name"] == "bad_tags" and fault["device"]["id"] == "0000a1b2"


def test_unknown_devices_are_counted_never_forwarded(home):
    stranger = F.Codec(0x0BADCAFE, os.urandom(16))
    data = bytes(stranger.encode(bytearray(24), 1, F.T_SOS))
    assert home.core.on_frame("11:22:33:44:55:66", data, -80) == "unknown"
    assert home.core.unknown[0x0BADCAFE].count == 1 and not home.pub.events and not home.acks
    assert home.core.on_frame("11:22:33:44:55:66", b"\x10" + bytes(5), -80) == "malformed"


def test_replay_below_the_window_is_refused_loudly(home):
    home.send(0xC3D4, F.T_HEARTBEAT, seq=5000, arg=90 << 16)
    what, _ = home.send(0xC3D4, F.T_SOS, seq=100)
    assert what == "too_old"
    [fault] = home.published("fault")
    assert fault["fault"]["name"] == "replay_too_old"


def test_routine_frames_stay_local_and_update_battery(home):
    home.send(0xC3D4, F.T_HEARTBEAT, arg=(77 << 16) | (150))
    home.send(0xC3D4, F.T_ACTIVITY, arg=(3 << 8) | 5)
    assert not home.published()
    assert home.core.devices[0xC3D4].battery == 77
    assert home.last_ack(0xC3D4).status == F.ACK_DELIVERED  # nothing more will come
    assert home.store.pending() == []


def test_cancel_and_test_name_the_alarm_they_supersede(home):
    _, sos = home.send(0xA1B2, F.T_SOS)
    _, cancel = home.send(0xA1B2, F.T_SOS_CANCEL, arg=1)
    [c] = home.published("cancel")
    assert c["cancels"] == f"hub-a:0000a1b2:{sos}"
    _, sos2 = home.send(0xA1B2, F.T_SOS)
    home.send(0xA1B2, F.T_TEST, arg=1)
    [t] = home.published("test")
    assert t["cancels"] == f"hub-a:0000a1b2:{sos2}"


def test_broker_down_keeps_everything_and_reoffers_on_connect(home):
    home.pub.connected = False
    seqs = [home.send(0xA1B2, F.T_SOS)[1] for _ in range(5)]
    assert not home.pub.events and len(home.store.pending()) == 5
    home.pub.connected = True
    home.core.on_connected(False, "5")
    assert [m["seq"] for m in home.published()] == seqs
    for ref, _ in list(home.pub.events):
        home.core.on_delivered(ref)
    assert home.store.pending() == []


def test_a_batch_of_pubacks_is_one_commit_seen_at_once(tmp_path, schemas):
    later: list = []
    home = Home(tmp_path, schemas, defer=later.append)  # the daemon passes loop.call_soon
    try:
        refs = [f"hub-a:0000a1b2:{home.send(0xA1B2, F.T_SOS)[1]}" for _ in range(3)]
        statements: list[str] = []
        home.store._db.set_trace_callback(statements.append)
        for ref in refs:
            home.core.on_delivered(ref)
        assert "COMMIT" not in statements and len(later) == 1  # one commit, queued
        assert home.store.pending() == [] and home.last_ack(0xA1B2).status == F.ACK_DELIVERED
        home.core.on_connected(True, "5")  # nothing delivered is offered again meanwhile
        assert [r for r, _ in home.pub.events] == refs
        later.pop()()
        assert statements.count("COMMIT") == 1
        home.restart()
        assert home.store.pending() == []  # on disk
    finally:
        home.store.close()


def test_without_a_backlog_a_new_event_is_published_without_reading_the_queue(home):
    statements: list[str] = []
    home.store._db.set_trace_callback(statements.append)
    pending_reads = lambda: sum("state = 0" in s for s in statements)  # noqa: E731
    home.send(0xA1B2, F.T_SOS)  # a fresh hub first reads what an earlier run left
    n = pending_reads()
    for _ in range(3):
        home.send(0xA1B2, F.T_SOS)
        home.core.on_delivered(home.pub.events[-1][0])
    assert pending_reads() == n and len(home.published("manual_alarm")) == 4
    home.core.on_disconnected("gone")
    home.pub.connected = False
    _, seq = home.send(0xA1B2, F.T_SOS)  # waits in the store...
    home.pub.connected = True
    home.core.on_connected(True, "5")  # ...and is found there
    assert home.pub.events[-1][0] == f"hub-a:0000a1b2:{seq}" and pending_reads() > n


def test_a_full_uplink_window_leaves_a_backlog_that_drains(home):
    refs = [
        f"hub-a:0000a1b2:{home.send(0xA1B2, F.T_SOS)[1]}" for _ in range(PUMP_MAX_IN_FLIGHT + 5)
    ]
    assert [r for r, _ in home.pub.events] == refs[:PUMP_MAX_IN_FLIGHT]
    for ref in refs[:PUMP_MAX_IN_FLIGHT]:
        home.core.on_delivered(ref)
    assert [r for r, _ in home.pub.events] == refs  # the rest went as the window freed
    assert [e.ref for e in home.store.pending()] == refs[PUMP_MAX_IN_FLIGHT:]
    for ref in refs[PUMP_MAX_IN_FLIGHT:]:
        home.core.on_delivered(ref)
    assert home.store.pending() == [] and not home.core.backlog


def test_a_refused_publish_stays_pending_and_is_offered_again(home):
    home.send(0xA1B2, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_rejected(ref, "0x87 Not authorized")
    assert home.published("fault")[0]["fault"]["name"] == "uplink_rejected"
    n = len(home.pub.events)
    home.core.tick()
    assert len(home.pub.events) == n  # not hammered at once
    home.clock.advance(61_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 2


def test_confirmed_alarms_repeat_until_an_operator_acknowledges(home):
    home.send(0xA1B2, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_delivered(ref)
    home.clock.advance(301_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 2
    home.core.on_delivered(ref)
    req = contract.Request("ack", 1, ref=ref)
    home.core.on_request(req)
    home.clock.advance(301_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 2


def test_restart_keeps_replay_windows_and_hub_sequence(home):
    _, seq = home.send(0xA1B2, F.T_SOS)
    home.core.hub_fault(207, "test fault")
    hub_seq = home.core.hub_seq
    home.restart()
    assert home.send(0xA1B2, F.T_SOS, seq=seq)[0] == "duplicate"
    assert home.core.hub_seq == hub_seq
    home.core.hub_fault(207, "another")
    assert home.core.hub_seq == hub_seq + 1


def test_supervision_offline_and_restored(home):
    home.send(0xC3D4, F.T_HEARTBEAT)
    assert (0xC3D4, True) in home.pub.availability
    home.clock.advance(2 * 30 * MIN + 10 * MIN + 1000)
    home.send(0xA1B2, F.T_HEARTBEAT)  # the button keeps reporting
    home.core.tick()
    assert (0xC3D4, False) in home.pub.availability
    [missing] = home.published("supervision_missing")
    assert missing["device"]["id"] == "0000c3d4" and missing["ref"].startswith("hub-a:00000000:")
    home.send(0xC3D4, F.T_HEARTBEAT)
    assert len(home.published("supervision_restored")) == 1


def test_inactivity_prealarm_sounds_in_acks_then_alarms_then_cancels(home):
    home.send(0xC3D4, F.T_ACTIVITY, arg=(4 << 8) | 5)  # someone moves
    for _ in range(12 * 60 + 30):  # a still home, minute by minute (default 12 h at first)
        home.clock.advance(MIN)
        home.core.tick()
        if home.core.home.prealarm_until:
            break
    assert home.core.home.prealarm_until, "no pre-alarm after 12.5 h of stillness"
    home.send(0xA1B2, F.T_HEARTBEAT)
    ack = home.last_ack(0xA1B2)
    assert ack.setting == F.S_PREALARM and 1 <= ack.value <= 10
    assert not home.published("automatic_alarm")
    for _ in range(11):
        home.clock.advance(MIN)
        home.core.tick()
    [alarm] = home.published("automatic_alarm")
    assert alarm["cause"] == "inactivity" and "device" not in alarm
    home.send(0xC3D4, F.T_MOTION, arg=800)
    [cancel] = home.published("cancel")
    assert cancel["cancels"] == alarm["ref"]


def test_platform_settings_reach_devices_in_acknowledgements(home):
    req = contract.Request("settings", "t1", device_id=0xC3D4, settings=((F.S_SUMMARY_MIN, 10),))
    home.core.on_request(req)
    assert home.pub.responses[-1][2] == contract.Result.HOLD  # in force at next contact
    home.send(0xC3D4, F.T_HEARTBEAT)
    first = home.last_ack(0xC3D4)
    home.core.ack_written(0xC3D4, first.setting, True)
    home.send(0xC3D4, F.T_HEARTBEAT)
    second = home.last_ack(0xC3D4)
    home.core.ack_written(0xC3D4, second.setting, True)
    assert {(first.setting, first.value), (second.setting, second.value)} == {
        (F.S_HEARTBEAT_MIN, 30),
        (F.S_SUMMARY_MIN, 10),
    }
    home.send(0xC3D4, F.T_HEARTBEAT)
    assert home.last_ack(0xC3D4).setting == F.S_NONE


def test_a_pending_setting_rides_only_on_a_frames_first_ack(home):
    req = contract.Request("settings", "t1", device_id=0xA1B2, settings=((F.S_SUMMARY_MIN, 10),))
    home.core.on_request(req)  # pending now: heartbeat 60 (hub.toml) and summary 10
    _, seq = home.send(0xA1B2, F.T_HEARTBEAT)
    first = home.last_ack(0xA1B2)
    assert (first.setting, first.value) == (F.S_HEARTBEAT_MIN, 60)
    home.core.ack_written(0xA1B2, first.setting, True)
    # the same advert heard again: the device already has this frame's status (a heartbeat
    # stays local: DELIVERED at once) and ignores this ack whole, so the summary setting must
    # not ride on it (it would be lost)
    home.send(0xA1B2, F.T_HEARTBEAT, seq=seq, attempt=1)
    again = home.last_ack(0xA1B2)
    assert (again.seq, again.status, again.setting) == (seq, first.status, F.S_NONE)
    home.core.ack_written(0xA1B2, again.setting, True)
    home.send(0xA1B2, F.T_HEARTBEAT)
    assert (home.last_ack(0xA1B2).setting, home.last_ack(0xA1B2).value) == (F.S_SUMMARY_MIN, 10)


def test_a_setting_changed_while_its_ack_was_in_flight_is_sent_again(home):
    home.send(0xA1B2, F.T_HEARTBEAT)
    home.core.ack_written(0xA1B2, F.S_HEARTBEAT_MIN, True)
    for t, v in (("t1", 10), ("t2", 15)):
        req = contract.Request("settings", t, device_id=0xA1B2, settings=((F.S_SUMMARY_MIN, v),))
        home.core.on_request(req)
        if v == 10:
            home.send(0xA1B2, F.T_HEARTBEAT)  # carries 10; the platform changes it meanwhile
            assert home.last_ack(0xA1B2).value == 10
    home.core.ack_written(0xA1B2, F.S_SUMMARY_MIN, True)  # the device has 10, not 15
    home.send(0xA1B2, F.T_HEARTBEAT)
    assert (home.last_ack(0xA1B2).setting, home.last_ack(0xA1B2).value) == (F.S_SUMMARY_MIN, 15)


def test_identify_rides_on_the_devices_next_acknowledgement_once(home):
    home.send(0xC3D4, F.T_HEARTBEAT)
    home.core.ack_written(0xC3D4, F.S_HEARTBEAT_MIN, True)
    home.core.on_request(contract.Request("identify", "i1", device_id=0xC3D4))
    kind, tr, result, _, data = home.pub.responses[-1]
    assert (kind, tr, result) == ("identify", "i1", contract.Result.HOLD)
    assert data == {"device": "0000c3d4", "seconds": 30}
    home.send(0xC3D4, F.T_ACTIVITY, arg=(3 << 8) | 5)
    ack = home.last_ack(0xC3D4)
    assert (ack.setting, ack.value) == (F.S_IDENTIFY, 30)
    home.core.ack_written(0xC3D4, ack.setting, True)
    home.send(0xC3D4, F.T_ACTIVITY, arg=(3 << 8) | 5)
    assert home.last_ack(0xC3D4).setting == F.S_NONE  # once, not at every contact
    home.core.on_request(contract.Request("identify", "i2", device_id=0x1234))
    assert home.pub.responses[-1][2] == contract.Result.WRONG_DATA


def test_requests_about_unknown_things_get_error_results(home):
    home.core.on_request(contract.Request("ack", 1, ref="hub-a:0000a1b2:999"))
    home.core.on_request(contract.Request("test", 2, device_id=0x1234))
    home.core.on_request(contract.Request("list_devices", 3))
    res = {r[1]: r for r in home.pub.responses}
    assert res[1][2] == contract.Result.WRONG_DATA
    assert res[2][2] == contract.Result.WRONG_DATA
    assert res[3][2] == 0 and [d["id"] for d in res[3][4]["devices"]] == ["0000a1b2", "0000c3d4"]


def test_a_restarted_hub_keeps_repeating_unacknowledged_alarms(home):
    home.send(0xA1B2, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_delivered(ref)
    home.restart()
    home.clock.advance(301_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 2
    home.core.on_request(contract.Request("ack", 9, ref=ref))
    home.restart()
    assert ref not in home.core.repeat_at


def test_an_alarm_the_elder_cancelled_is_not_repeated(home):
    home.send(0xA1B2, F.T_SOS)
    ref = home.pub.events[0][0]
    home.core.on_delivered(ref)
    home.send(0xA1B2, F.T_SOS_CANCEL, arg=1)
    home.clock.advance(301_000)
    home.core.tick()
    assert [r for r, _ in home.pub.events].count(ref) == 1
