"""Every acknowledgement the hub writes is bound to the type of the frame it acknowledges
(docs/protocol.md, "Acknowledgement"): it verifies with the stored frame's type and no other,
STORED at once, DELIVERED after the platform's PUBACK, HELP after an operator's ack, also
across a hub restart. Without a stored record to take the type from, none is sent.

A device verifies with the type of the frame its outbox holds under the ack's number, so an
ack made for an old HEARTBEAT cannot tell a new SOS under a reused number it was DELIVERED."""

from __future__ import annotations

import logging

from hub import contract
from shared import frame as F

BUTTON = 0xA1B2


def acks_for(home, seq, dev=BUTTON) -> list[bytes]:
    return [data for d, data, _ in home.acks if d == dev and F.peek_ack_seq(data) == seq]


def bound_to(home, data, dev=BUTTON) -> list[int]:
    """The message types this acknowledgement verifies for (one, if it is bound to one)."""
    types = []
    for t in range(1, F.T_MAX + 1):
        try:
            home.codec[dev].verify_ack(data, t)
            types.append(t)
        except F.FrameError:
            pass
    return types


def statuses(home, seq, mtype, dev=BUTTON) -> list[int]:
    """The statuses written for `seq`, each checked as the device does (with `mtype`)."""
    acks = acks_for(home, seq, dev)
    assert all(bound_to(home, a, dev) == [mtype] for a in acks), "bound to one type: mtype"
    return [home.codec[dev].verify_ack(a, mtype).status for a in acks]


def operator_ack(home, ref, transaction=1):
    home.core.on_request(contract.Request("ack", transaction, ref=ref))
    assert home.pub.responses[-1][:3] == ("ack", transaction, 0)


def test_an_alarm_is_acknowledged_for_its_own_type_up_to_help(home):
    _, sos = home.send(BUTTON, F.T_SOS)
    _, hb = home.send(BUTTON, F.T_HEARTBEAT)
    ref = home.store.ref_for(BUTTON, sos)
    home.core.on_delivered(ref)  # the platform's PUBACK, while the device listens
    operator_ack(home, ref)
    assert statuses(home, sos, F.T_SOS) == [F.ACK_STORED, F.ACK_DELIVERED, F.ACK_HELP]
    assert statuses(home, hb, F.T_HEARTBEAT)  # (a heartbeat stays local: DELIVERED at once)


def test_after_a_restart_acks_still_take_the_type_from_the_stored_record(home):
    _, sos = home.send(BUTTON, F.T_SOS)
    _, sos2 = home.send(BUTTON, F.T_SOS)
    refs = [home.store.ref_for(BUTTON, s) for s in (sos, sos2)]
    home.restart()  # before the platform's PUBACKs; this run knows no frame of the device
    home.clock.advance(3000)
    # A retry of the first: acknowledged with the stored status, to where it came from.
    what, _ = home.send(BUTTON, F.T_SOS, seq=sos, attempt=4, age_ms=3000)
    assert what == "duplicate"
    home.core.on_delivered(refs[0])
    home.send(BUTTON, F.T_SOS, seq=sos, attempt=5, age_ms=3000)
    operator_ack(home, refs[0])
    home.send(BUTTON, F.T_SOS, seq=sos, attempt=6, age_ms=3000)
    # The hub kept where the device is across the restart: DELIVERED and HELP are pushed at
    # once, and each retry is answered again.
    expected = [F.ACK_STORED] * 2 + [F.ACK_DELIVERED] * 2 + [F.ACK_HELP] * 2
    assert statuses(home, sos, F.T_SOS) == expected
    # So are the second alarm's, their type read from the record stored before the restart.
    _, hb = home.send(BUTTON, F.T_HEARTBEAT)
    home.core.on_delivered(refs[1])
    operator_ack(home, refs[1], transaction=2)
    assert statuses(home, sos2, F.T_SOS) == [F.ACK_STORED, F.ACK_DELIVERED, F.ACK_HELP]
    assert statuses(home, hb, F.T_HEARTBEAT)


def test_a_heartbeats_acks_do_not_verify_for_an_sos_under_its_number(home):
    # The hub never acknowledges a reused number (test_pipeline_reused_seq.py); what it wrote
    # for the old frame under it (replayed by an attacker, or still in the radio queue) is
    # refused by a device now holding an SOS under that number.
    _, seq = home.send(BUTTON, F.T_HEARTBEAT)
    (ack,) = acks_for(home, seq)
    assert bound_to(home, ack) == [F.T_HEARTBEAT]
    what, _ = home.send(BUTTON, F.T_SOS, seq=seq)  # the number again, after a power loss
    assert what == "reused" and acks_for(home, seq) == [ack]


def test_no_stored_record_no_acknowledgement_and_a_log_line(home, caplog):
    caplog.set_level(logging.WARNING, logger="carebeacon")
    home.send(BUTTON, F.T_HEARTBEAT)  # the device is near
    n = len(home.acks)
    home.core.devices_told_help(BUTTON, 999)  # nothing stored under 999: no type to bind to
    assert len(home.acks) == n
    assert home.core.counters["ack_no_record"] == 1
    [line] = [r.getMessage() for r in caplog.records if "hub-a:0000a1b2:999" in r.getMessage()]
    assert "no stored record" in line
