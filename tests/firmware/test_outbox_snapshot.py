"""The outbox is in the deep-sleep snapshot: a pending alarm survives it, number and all.

Left out of the snapshot, the outbox would come back empty after every deep sleep:
the alarm would silently stop (or, recovered from NVS, restart its schedule).
"""

from simkit import SEC, Rig

from firmware import persist
from firmware.apps.common import RTC_BYTES
from shared.frame import ACK_HELP, T_SOS, Codec, frame_from_adv


def test_a_pending_alarm_is_restored_and_retried_with_its_number():
    rig = Rig("button")
    rig.hub.down = True  # nothing acknowledges: the alarm stays pending
    rig.run(700)  # booted, first heartbeat on the air: awake
    app = rig.dev.app
    assert app is not None
    now = app.hal.ticks_ms()
    seq = app.core.send(T_SOS, 0, now)
    app.core.step(now)  # the first attempt goes on the air
    ob = app.core.outbox
    attempts = ob.retries[ob.slot(seq)].attempts
    assert attempts >= 1

    buf = bytearray(RTC_BYTES)
    n = persist.save(app._all_objects(), buf, rig.cfg.fingerprint)
    again = type(app)(app.hal, app.cfg)
    assert not again.core.outbox.pending(seq)
    assert persist.load(again._all_objects(), buf, n, rig.cfg.fingerprint) == ""

    ob2 = again.core.outbox
    assert ob2.pending(seq) and ob2.type_of(seq) == T_SOS and ob2.status(seq) == 0
    r = ob2.retries[ob2.slot(seq)]
    assert r.active and r.attempts == attempts and r.next_at == ob.retries[ob.slot(seq)].next_at
    again.core.step(r.next_at)  # the next retry, from the restored state alone
    f = Codec(rig.cfg.device_id, rig.cfg.key).verify(frame_from_adv(app.hal.radio.adv))
    assert (f.seq, f.mtype, f.attempt) == (seq, T_SOS, attempts + 1)


def test_an_alarm_pending_across_deep_sleep_goes_on_where_it_was():
    rig = Rig("button")
    rig.hub.help_ms = 5 * SEC
    rig.run(10 * SEC)  # first heartbeat acknowledged, asleep
    rig.hub.down = True
    rig.press(rig.now + SEC, 200)
    sleeps = rig.dev.sleeps
    rig.run(2 * 60 * SEC)  # burst, then backoff: deep sleep between retries
    seq = int.from_bytes(rig.plat.nvs["alarms"][2:6], "big")  # the SOS's number (1st record)
    assert seq and rig.dev.sleeps > sleeps
    while rig.dev.state != "deep":
        rig.run(20)
    rig.hub.down = False
    rig.run(3 * 60 * SEC)
    sos = rig.frames(T_SOS)
    assert sos and {f.seq for f in sos} == {seq}, "the same number after every wake"
    assert sos[0].attempt > 3, "the schedule went on (a fresh start would restart at 1)"
    assert rig.dev.app is None or rig.dev.app.restored
    assert any(s == seq and st == ACK_HELP for _t, _n, s, st in rig.hub.acks_sent)
    assert rig.unique() == ""
