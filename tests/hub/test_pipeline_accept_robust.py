"""An alarm whose event cannot be built as it came is never lost (review finding 1).

The replay window marks a frame seen only once it is stored: before, an exception while
building the event (an RSSI of 127, HCI's "not available"; a room longer than the contract's
64 characters) left the seq marked and nothing stored, so every retry was a "duplicate" with
nothing to acknowledge: the SOS was gone for good, silently. Values the contract cannot carry
are refused where they come in (the radio's RSSI, hub.toml's room and location, `device add`),
an event that still does not fit goes out without them, and the daemon's periodic tasks cannot
kill the hub loop. Real store, real device codecs, real config loader, real radio on the BlueZ
double.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
from pipeline_testing import HUB_TOML, KEYS, MIN, Home

from hub import contract, pipeline
from hub.cli import main as hub_cli
from hub.config import ConfigError, load
from hub.daemon import Daemon
from shared import frame as F

BUTTON, PIR = 0xA1B2, 0xC3D4
ADDR = "AA:BB:CC:00:B2:01"


def advert(home: Home, seq: int, mtype: int = F.T_SOS, age_ms: int = 0, attempt: int = 0):
    return bytes(home.codec[BUTTON].encode(bytearray(24), seq, mtype, 0, age_ms, attempt))


def acked(home: Home, seq: int) -> list[int]:
    """The statuses of the acknowledgements written for `seq` of the button."""
    out = []
    for d, data, _ in home.acks:
        if d == BUTTON:
            ack = home.verify_ack(BUTTON, data)
            if ack.seq == seq:
                out.append(ack.status)
    return out


# -- the reviewer's sequence (demo9): the first advert of an SOS with RSSI 127 --------------------


def test_sos_first_heard_with_rssi_127_is_stored_acknowledged_and_published(home):
    assert home.core.on_frame(ADDR, advert(home, 1), 127) == "stored"
    assert acked(home, 1) == [F.ACK_STORED]
    [sos] = home.published("manual_alarm")  # schema-checked
    assert sos["ref"] == "hub-a:0000a1b2:1" and "rssi" not in sos
    assert home.store.get("hub-a:0000a1b2:1").rssi is None
    # the retry is a duplicate of a STORED frame: acknowledged again, nothing stored twice
    assert home.core.on_frame(ADDR, advert(home, 1, age_ms=600, attempt=1), -60) == "duplicate"
    assert acked(home, 1) == [F.ACK_STORED, F.ACK_STORED]
    assert home.core.on_frame(ADDR, advert(home, 2), -60) == "stored"
    home.restart()
    retry = advert(home, 1, age_ms=60_000, attempt=9)
    assert home.core.on_frame(ADDR, retry, -60) == "duplicate"
    assert acked(home, 1)[-1] == F.ACK_STORED
    assert len(home.published("manual_alarm")) == 2


@pytest.mark.parametrize(
    ("rssi", "kept"), [(127, None), (21, None), (-128, None), (20, 20), (-127, -127), (None, None)]
)
def test_only_rssi_the_contract_carries_reaches_the_event(home, rssi, kept):
    assert pipeline.usable_rssi(rssi) == kept
    assert home.core.on_frame(ADDR, advert(home, 1), rssi) == "stored"
    [sos] = home.published("manual_alarm")
    assert sos.get("rssi") == kept
    assert home.core.devices[BUTTON].rssi == kept


def test_nothing_marks_the_frame_seen_before_it_is_stored(home, monkeypatch):
    """Whatever fails before the store (here the event builder, once), the device's retry is
    taken as new, stored, acknowledged and published: never a "duplicate" of nothing."""
    real = contract.build_event
    calls = []

    def failing_once(**kw):
        calls.append(kw["ref"])
        if len(calls) == 1:
            raise RuntimeError("a bug in building the event")
        return real(**kw)

    monkeypatch.setattr(contract, "build_event", failing_once)
    with pytest.raises(RuntimeError):
        home.core.on_frame(ADDR, advert(home, 1), -60)
    assert home.store.get("hub-a:0000a1b2:1") is None and acked(home, 1) == []
    assert home.core.on_frame(ADDR, advert(home, 1, age_ms=2000, attempt=3), -60) == "stored"
    assert acked(home, 1) == [F.ACK_STORED]
    assert [m["ref"] for m in home.published("manual_alarm")] == ["hub-a:0000a1b2:1"]
    home.restart()
    assert home.core.on_frame(ADDR, advert(home, 1, age_ms=9000, attempt=9), -60) == "duplicate"
    assert acked(home, 1) == [F.ACK_STORED, F.ACK_STORED]


# -- a room or location too long for the contract ------------------------------------------------


def _with_room(home: Home, dev_id: int, room: str, location: str = "") -> None:
    """A device whose text passed no check (an older hub.toml loader did not check it)."""
    dev = home.cfg.devices[dev_id]
    devices = {**home.cfg.devices, dev_id: dataclasses.replace(dev, room=room, location=location)}
    home.cfg = dataclasses.replace(home.cfg, devices=devices)
    home.restart()


def test_an_alarm_of_a_device_whose_room_does_not_fit_still_goes_out(home, caplog):
    _with_room(home, BUTTON, "b" * 65, "l" * 201)
    assert home.core.on_frame(ADDR, advert(home, 1), -60) == "stored"
    assert acked(home, 1) == [F.ACK_STORED]
    [sos] = home.published("manual_alarm")
    assert sos["device"]["room"] == "b" * 64 and sos["device"]["location"] == "l" * 200
    assert sos["rssi"] == -60
    assert home.core.counters["events_repaired"] == 1
    assert any("does not fit the contract" in r.getMessage() for r in caplog.records)


def test_supervision_of_such_a_device_does_not_stop_the_tick(home):
    """demo11: the supervision event about the device raised ValueError out of tick()."""
    _with_room(home, PIR, "p" * 65)
    for _ in range(200):
        home.clock.advance(MIN)
        home.core.tick()
    missing = {
        m["ref"]: m
        for m in home.published("supervision_missing")
        if m["device"]["id"] == "0000c3d4"
    }
    assert len(missing) == 1 and next(iter(missing.values()))["device"]["room"] == "p" * 64


def test_hub_toml_refuses_a_room_or_location_the_contract_cannot_carry(tmp_path):
    sec = tmp_path / "secrets.toml"
    sec.write_text("[keys]\n" + "".join(f'"{d:08x}" = "{k.hex()}"\n' for d, k in KEYS.items()))
    sec.chmod(0o600)
    cfg = tmp_path / "hub.toml"
    for key, value, limit in (("room", "bedroom", 64), ("location", "by the bed", 200)):
        cfg.write_text(HUB_TOML.replace(f'{key} = "{value}"', f'{key} = "{"x" * limit}"'))
        assert getattr(load(cfg).devices[BUTTON], key) == "x" * limit
        cfg.write_text(HUB_TOML.replace(f'{key} = "{value}"', f'{key} = "{"x" * (limit + 1)}"'))
        with pytest.raises(ConfigError) as e:
            load(cfg)
        assert str(e.value).startswith(f"{cfg}: devices[0].{key}: {limit + 1} characters")
        # check-config (what the systemd unit runs before the hub) says the same, exit 2
        assert hub_cli(["-c", str(cfg), "check-config"]) == 2


def test_device_add_refuses_it_and_changes_nothing(tmp_path, capsys):
    sec = tmp_path / "secrets.toml"
    sec.write_text("[keys]\n" + "".join(f'"{d:08x}" = "{k.hex()}"\n' for d, k in KEYS.items()))
    sec.chmod(0o600)
    cfg = tmp_path / "hub.toml"
    cfg.write_text(HUB_TOML)
    before = cfg.read_text(), sec.read_text()
    for option, n in (("--room", 65), ("--location", 201)):
        args = ["-c", str(cfg), "device", "add", "0000e5f6", "--kind", "bracelet", option, "x" * n]
        assert hub_cli(args) == 2
        assert f"{option}: {n} characters" in capsys.readouterr().err
        assert (cfg.read_text(), sec.read_text()) == before
    assert (
        hub_cli(
            ["-c", str(cfg), "device", "add", "0000e5f6", "--kind", "bracelet", "--room", "x" * 64]
        )
        == 0
    )
    assert load(cfg).devices[0xE5F6].room == "x" * 64


# -- the radio edge -------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_the_radio_hands_on_no_rssi_for_hci_127(run) -> None:
    from radio_testing import MARKER, Heard, frame, radio_for

    from bluez_testing import eventually
    from shared.frame import COMPANY_ID

    async def body(bz) -> None:
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        try:
            assert await bz.advertise("C8:2E:18:00:00:01", {COMPANY_ID: frame(1)}, rssi=127)
            assert await bz.advertise("C8:2E:18:00:00:02", {COMPANY_ID: frame(2)}, rssi=20)
            assert await bz.advertise(MARKER, {COMPANY_ID: frame(5)}, rssi=-80)
            await eventually(lambda: heard.has(MARKER, frame(5)))
            assert [(a, r) for a, _, r in heard.items] == [
                ("C8:2E:18:00:00:01", None),
                ("C8:2E:18:00:00:02", 20),
                (MARKER, -80),
            ]
        finally:
            await radio.stop()

    run(body)


# -- the daemon's periodic tasks ------------------------------------------------------------------


def test_the_core_tick_runs_every_part_and_then_raises(home, monkeypatch):
    """A supervision part that raises must not stop alarms being repeated; tests see it."""
    _, seq = home.send(BUTTON, F.T_SOS)
    ref = home.store.ref_for(BUTTON, seq)
    home.core.on_delivered(ref)
    n = len(home.published("manual_alarm"))

    def broken(now):
        raise ValueError("a bug in supervision")

    monkeypatch.setattr(home.core.home, "tick", broken)
    home.clock.advance(home.core.alarm_repeat_ms)
    with pytest.raises(ValueError, match="a bug in supervision"):
        home.core.tick()
    assert len(home.published("manual_alarm")) == n + 1  # repeated all the same


def test_the_daemon_reports_a_failing_tick_once_and_keeps_running(home, caplog):
    daemon = Daemon(home.cfg, store=home.store)
    daemon.core = home.core
    calls = []

    def tick():
        calls.append(1)
        raise ValueError("room must be a string of at most 64 characters")

    with pytest.raises(ValueError):  # under pytest an error is never swallowed...
        daemon._guarded("the periodic tick", tick)
    daemon.keep_running_on_errors = True  # ...unless the test is about exactly that
    caplog.set_level(logging.ERROR, logger="carebeacon")
    for _ in range(12):
        daemon._guarded("the periodic tick", tick)
    assert len(calls) == 13
    [fault] = home.published("fault")
    assert fault["fault"]["code"] == 208 and fault["fault"]["name"] == "internal_error"
    assert "the periodic tick failed: ValueError at" in fault["fault"]["text"]
    assert list(daemon.errors.values()) == [12]
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1  # the first with its traceback; then counted (10th logged)
    assert any("10 times so far" in r.getMessage() for r in caplog.records)


def test_a_bug_in_an_acknowledgement_write_is_reported_and_the_write_counted_failed(home):
    """The daemon's ack-writer task: an unexpected exception from the radio was left in a
    task nobody awaits ("Task exception was never retrieved"), with no fault. Now it is fault
    208 and the write counts as failed (the device's next retry gets a new ack)."""

    class BrokenRadio:
        async def send_ack(self, address, data, *, own=False):
            raise KeyError("a bug in the radio")

    async def body():
        daemon = Daemon(home.cfg, store=home.store)
        daemon.core = home.core
        daemon.radio = BrokenRadio()
        daemon.keep_running_on_errors = True
        failed = home.core.counters["ack_failed"]
        daemon._acker(BUTTON, "AA:BB:CC:00:B2:01", bytes(20), F.S_NONE)
        await asyncio.gather(*daemon._tasks)  # nothing left to raise in the task
        assert home.core.counters["ack_failed"] == failed + 1
        [fault] = home.published("fault")
        assert fault["fault"]["code"] == 208
        assert "an acknowledgement write failed: KeyError" in fault["fault"]["text"]

    asyncio.run(body())
