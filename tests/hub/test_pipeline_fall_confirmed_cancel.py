"""A bracelet's fall through the hub: FALL_SUSPECTED (an early-warning alarm), then
FALL_CONFIRMED, which supersedes it (`cancels` names it, the hub stops repeating it), then the
wearer's cancel, which names the confirmed fall: after it no alarm of that fall is active or
repeated. Every published message is checked against the contract's schemas."""

from __future__ import annotations

import pytest
from pipeline_testing import HUB_TOML, Home

from hub import contract, events as E
from shared import frame as F

BRACELET = 0xA1B2  # the harness's first key, configured as a bracelet here
TOML = HUB_TOML.replace('kind = "button"', 'kind = "bracelet"', 1)
REPEAT_MS = 301_000  # just past the default alarm_repeat_s


@pytest.fixture
def home(tmp_path, schemas):
    h = Home(tmp_path, schemas, toml=TOML)
    yield h
    h.store.close()


def count(home, ref):
    return [r for r, _ in home.pub.events].count(ref)


def repeat_once(home):
    home.clock.advance(REPEAT_MS)
    home.core.tick()


def fall_confirmed(home):
    """FALL_SUSPECTED seq 5 delivered, then FALL_CONFIRMED seq 7 (arg: 2 back) delivered."""
    home.send(BRACELET, F.T_FALL_SUSPECTED, seq=5)
    sus_ref = home.pub.events[-1][0]
    home.core.on_delivered(sus_ref)
    assert home.core.repeat_at.get(sus_ref) is not None  # an alarm: repeated until HELP
    home.send(BRACELET, F.T_FALL_CONFIRMED, arg=2, seq=7)
    conf_ref, conf = home.pub.events[-1]
    home.core.on_delivered(conf_ref)
    return sus_ref, conf_ref, conf


def test_the_bracelet_is_configured_as_one(home):
    assert home.cfg.devices[BRACELET].kind == "bracelet"


def test_a_confirmed_fall_supersedes_its_suspected_fall(home):
    sus_ref, conf_ref, conf = fall_confirmed(home)
    assert sus_ref == home.store.ref_for(BRACELET, 5)
    assert conf_ref == home.store.ref_for(BRACELET, 7)
    assert (conf["type"], conf["cause"], conf["cancels"]) == ("automatic_alarm", "fall", sus_ref)
    assert conf["scaip"]["message_type"] == "alarm"
    assert sus_ref not in home.core.repeat_at  # superseded: no operator ack is coming for it
    assert conf_ref in home.core.repeat_at  # the confirmed fall is the alarm now
    repeat_once(home)
    assert count(home, sus_ref) == 1
    assert count(home, conf_ref) == 2
    home.core.on_delivered(conf_ref)
    repeat_once(home)
    assert count(home, conf_ref) == 3  # repeated until an operator acknowledges it...
    home.core.on_request(contract.Request("ack", 1, ref=conf_ref))
    home.core.on_delivered(conf_ref)
    repeat_once(home)
    assert count(home, conf_ref) == 3  # ...and no longer
    assert count(home, sus_ref) == 1
    home.published()  # every message fits the schemas


def test_the_cancel_after_confirmation_names_the_confirmed_fall(home):
    sus_ref, conf_ref, _ = fall_confirmed(home)
    home.send(BRACELET, F.T_FALL_CANCELLED, arg=3, seq=10)  # 3 back: the FALL_CONFIRMED
    cancel_ref, cancel = home.pub.events[-1]
    assert cancel_ref == home.store.ref_for(BRACELET, 10)
    assert (cancel["type"], cancel["cancels"]) == ("cancel", conf_ref)
    assert home.core.repeat_at == {}  # neither the confirmed fall nor its early warning
    home.core.on_delivered(cancel_ref)
    for _ in range(3):
        repeat_once(home)
    assert count(home, sus_ref) == 1 and count(home, conf_ref) == 1
    assert count(home, cancel_ref) == 1
    home.published()


def test_a_cancel_in_the_window_still_names_the_suspected_fall(home):
    home.send(BRACELET, F.T_FALL_SUSPECTED, seq=5)
    sus_ref = home.pub.events[-1][0]
    home.core.on_delivered(sus_ref)
    home.send(BRACELET, F.T_FALL_CANCELLED, arg=1, seq=6)
    cancel = home.pub.events[-1][1]
    assert cancel["cancels"] == sus_ref
    assert sus_ref not in home.core.repeat_at
    home.published()


def test_a_confirmed_fall_without_an_early_warning_names_nothing(home):
    home.send(BRACELET, F.T_FALL_CONFIRMED, arg=0, seq=3)  # the FALL_SUSPECTED was never sent
    conf_ref, conf = home.pub.events[-1]
    assert "cancels" not in conf and conf["cause"] == "fall"
    home.core.on_delivered(conf_ref)
    assert conf_ref in home.core.repeat_at
    home.published()


def test_the_contract_allows_cancels_only_on_a_confirmed_fall(schemas):
    assert E.map_frame(F.Frame(BRACELET, 7, F.T_FALL_CONFIRMED, 0, 0, 2)).cancels_seq == 5
    assert E.map_frame(F.Frame(BRACELET, 5, F.T_FALL_SUSPECTED, 0, 0, 0)).cancels_seq is None
    args = dict(hub="hub-a", county="test-county", household="HH-7", type="automatic_alarm",
                event_time=1_760_000_000.0, receive_time=1_760_000_000.0,
                device=contract.Device(id=BRACELET, kind="bracelet", location="", room=""))
    msg = contract.build_event(ref="hub-a:0000a1b2:7", cause="fall",
                               cancels="hub-a:0000a1b2:5", **args)
    schemas.check("event", msg)
    with pytest.raises(ValueError):
        contract.build_event(ref="hub-a:0000a1b2:7", cause="fall_suspected",
                             cancels="hub-a:0000a1b2:5", **args)
    for cause in ("fall_suspected", "inactivity"):
        assert not schemas.is_valid("event", {**msg, "cause": cause})
    manual = {k: v for k, v in msg.items() if k != "cause"}
    assert not schemas.is_valid("event", {**manual, "type": "manual_alarm"})


def test_a_cancel_naming_a_confirmed_fall_the_hub_never_heard_cancels_its_suspected_fall(home):
    """The wearer cancels after the window while the FALL_CONFIRMED is still unheard (out of
    range): the bracelet stops sending it, and its cancel names a frame the hub never got.
    The platform holds only the FALL_SUSPECTED, so that is what the cancel closes."""
    home.send(BRACELET, F.T_FALL_SUSPECTED, seq=5)
    sus_ref = home.pub.events[-1][0]
    home.core.on_delivered(sus_ref)
    home.send(BRACELET, F.T_ACTIVITY, arg=(3 << 8) | 5, seq=6)  # routine, in the window
    # seq 7 FALL_CONFIRMED (arg 2) never reached the hub; seq 9 names it, 2 back
    home.send(BRACELET, F.T_FALL_CANCELLED, arg=2, seq=9)
    cancel_ref, cancel = home.pub.events[-1]
    assert cancel_ref == home.store.ref_for(BRACELET, 9)
    assert (cancel["type"], cancel["cancels"]) == ("cancel", sus_ref)
    assert home.core.repeat_at == {}  # the early warning is no longer repeated
    for _ in range(3):
        repeat_once(home)
    assert count(home, sus_ref) == 1
    home.published()


def test_an_unknown_ref_past_another_alarm_is_named_as_it_is(home):
    """Only the device's latest alarm before the unknown frame may stand for it: with a
    cancelled fall in between, the unknown frame is not that fall's confirmation."""
    home.send(BRACELET, F.T_FALL_SUSPECTED, seq=5)
    sus_ref = home.pub.events[-1][0]
    home.send(BRACELET, F.T_FALL_CANCELLED, arg=1, seq=6)
    assert home.pub.events[-1][1]["cancels"] == sus_ref
    home.send(BRACELET, F.T_FALL_CANCELLED, arg=3, seq=10)  # names seq 7, never heard
    assert home.pub.events[-1][1]["cancels"] == home.store.ref_for(BRACELET, 7)
    home.published()
