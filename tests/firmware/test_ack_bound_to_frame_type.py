"""An acknowledgement counts only for the frame it was made for, not for another frame that
got the same number (docs/protocol.md: "Acknowledgement", "Sequence numbers").

Numbers repeat only after a power loss while NVS was behind. Then an acknowledgement made for
the old frame under the number (a recording an attacker replays, or one still waiting in a
hub's radio queue) carries a valid tag; its tag covers the type of the frame acknowledged,
so a device whose outbox holds an SOS under that number refuses one made for a HEARTBEAT.
"""

from simkit import MIN, SEC, Forger, Rig

from firmware.apps.core import FRESH_SKIP
from shared.frame import ACK_DELIVERED, T_HEARTBEAT, T_SOS

START = 1000  # NVS's block end at the first power-on: numbering starts FRESH_SKIP above it
REUSED = START + FRESH_SKIP + 6  # the seventh heartbeat's number


def sos_under_a_heartbeats_number():
    """A button whose seventh HEARTBEAT was acknowledged (a real hub also writes its DELIVERED
    when the platform's PUBACK comes while the device listens), then a power loss with NVS
    behind by more than FRESH_SKIP, then an SOS that got that number again. The forger in
    front of the hub is silent."""
    rig = Rig("button", power_on=False, heartbeat_min=1)
    forger = Forger(rig.hub, rig.cfg.device_id, kinds=("type",))
    forger.active = False
    rig.world.medium = forger
    rig.plat.nvs["seq_end"] = START
    rig.dev.power_on()
    rig.run(6 * MIN + 30 * SEC)  # seven heartbeats, one a minute
    dev = rig.cfg.device_id
    assert rig.hub.first_seen[(dev, REUSED)][1] == T_HEARTBEAT
    assert any(s == REUSED for _t, _n, s, _st in rig.hub.acks_sent)
    # The power goes while NVS holds a block end more than FRESH_SKIP below it (as if it had
    # refused every newer one): after it the device numbers from there again (protocol.md).
    rig.plat.nvs["seq_end"] = REUSED - 1 - FRESH_SKIP
    rig.dev.power_loss(5 * SEC)
    rig.run(20 * SEC)  # the power-on heartbeat takes the number before it
    assert max(f.seq for f in rig.frames(T_HEARTBEAT, since=rig.now - 15 * SEC)) == REUSED - 1
    t0 = rig.now + SEC
    rig.press(t0, 200)
    rig.run(2 * SEC)
    (sos,) = rig.messages(T_SOS)
    assert sos.seq == REUSED
    return rig, forger, t0


def test_an_sos_refuses_a_delivered_made_for_a_heartbeat_under_its_number():
    rig, forger, t0 = sos_under_a_heartbeats_number()
    # The hub still knows REUSED as the HEARTBEAT: its own acks are bound to that (as one left in
    # a real hub's queue would be), and the forger replays a genuine HEARTBEAT DELIVERED for it.
    forger.active = True
    rig.run(60 * SEC)
    assert forger.writes >= 5
    hub_acks = [st for t, _n, s, st in rig.hub.acks_sent if s == REUSED and t >= t0]
    assert ACK_DELIVERED in hub_acks, "the hub wrote its HEARTBEAT-bound DELIVERED too"
    pats = rig.patterns(since=t0)
    assert pats[0] == "SENDING"
    assert "NOT_DELIVERED" in pats, "the elder is told it has not got through"
    assert not {"RECEIVED", "CALLING", "HELP"} & set(pats), pats
    bad = [v for t, what, v in rig.plat.traces if what == "bad_ack" and t >= t0]
    assert len(bad) >= 5
    assert not [v for t, what, v in rig.plat.traces if what == "stale_ack" and t >= t0]
    assert {f.seq for f in rig.frames(T_SOS, since=t0 + 30 * SEC)} == {REUSED}, "still trying"

    # The right acknowledgement (made for the SOS under REUSED) counts at once.
    forger.kinds = ("right",)
    t1 = rig.now
    rig.run(70 * SEC)  # the next retry (the schedule's ceiling is 60 s)
    pats = rig.patterns(since=t1)
    assert "CALLING" in pats, "help is being called"
    assert "NOT_DELIVERED" not in pats[pats.index("CALLING"):]
