"""RTC-memory snapshots and the feedback player."""

import pytest
from simkit import Rig

from firmware import persist
from firmware.apps.common import RTC_BYTES, battery_pct
from firmware.feedback import (
    NAMES,
    P_FAULT,
    P_HELP,
    P_IDENTIFY,
    P_LOW_BATTERY,
    P_PREALARM,
    P_SENDING,
    Feedback,
)
from firmware.hal import FOREVER, TONE_OFF
from shared.pir import Pir
from shared.retry import Retry
from shared.ticks import PERIOD


class Box:
    def __init__(self):
        self.a = 0
        self.flag = False
        self.lst = [0, 0, 0]
        self.big = 0
        self.skipped = b"x"  # not persisted: bytes


def test_roundtrip_ints_bools_lists_and_big_numbers():
    src, dst = Box(), Box()
    src.a, src.flag, src.lst, src.big = -5, True, [1, -2, 2**31], 2**32 - 1
    buf = bytearray(200)
    n = persist.save([src], buf, 77)
    assert persist.load([dst], buf, n, 77) == ""
    assert (dst.a, dst.flag, dst.lst, dst.big) == (-5, True, [1, -2, 2**31], 2**32 - 1)


def test_a_restored_state_machine_behaves_like_the_original():
    p, q = Pir(warmup_ms=1000), Pir(warmup_ms=1000)
    t = PERIOD - 500
    p.start(t)
    q.start(0)
    evs = [p.update(t + k * 700, k % 5 == 0) for k in range(1, 40)]
    buf = bytearray(1000)
    n = persist.save([p], buf)
    assert persist.load([q], buf, n) == ""
    later = [(t + 40 * 700 + k * 900, k % 3 == 0) for k in range(60)]
    assert [p.update(a, b) for a, b in later] == [q.update(a, b) for a, b in later]
    assert any(evs)


@pytest.mark.parametrize("why", ["checksum", "schema", "config", "short"])
def test_a_bad_snapshot_restores_nothing(why):
    src, dst = Box(), Box()
    src.a = 9
    buf = bytearray(200)
    n = persist.save([src], buf, 1)
    fp = 1
    if why == "checksum":
        buf[12] ^= 1
    elif why == "schema":
        dst.extra = 0
    elif why == "config":
        fp = 2
    else:
        n -= 3
    assert persist.load([dst], buf, n, fp) != ""
    assert dst.a == 0, "untouched"


@pytest.mark.parametrize("kind", ["button", "pir", "bracelet"])
def test_every_app_snapshot_fits_rtc_memory(kind):
    rig = Rig(kind, imu=lambda t: (0, 0, 1000))
    rig.run(700)  # booted, first heartbeat on the air: awake
    assert rig.dev.app is not None
    assert persist.size(rig.dev.app._all_objects()) <= RTC_BYTES
    assert RTC_BYTES + 16 <= 2048  # + the HAL's header, in ESP32 RTC user memory


def test_a_full_outbox_survives_deep_sleep():
    rig = Rig("pir")
    rig.run(700)
    app = rig.dev.app
    assert app is not None
    from shared.frame import T_FAULT

    now = app.hal.ticks_ms()
    seqs = [app.core.send(T_FAULT, k, now) for k in range(6)]
    buf = bytearray(RTC_BYTES)
    n = persist.save(app._all_objects(), buf, rig.cfg.fingerprint)
    assert n <= RTC_BYTES
    again = type(app)(app.hal, app.cfg)
    assert persist.load(again._all_objects(), buf, n, rig.cfg.fingerprint) == ""
    ob, ob2 = app.core.outbox, again.core.outbox
    assert ob2.o_seq == ob.o_seq and sorted(ob2.o_seq) == sorted(seqs)
    assert [r.next_at for r in ob2.retries] == [r.next_at for r in ob.retries]
    assert all(isinstance(r, Retry) for r in ob2.retries)


# -- feedback --------------------------------------------------------------------------


class Out:
    def __init__(self):
        self.log = []

    def led(self, on):
        self.log.append(("led", on))

    def tone(self, t):
        self.log.append(("tone", t))

    def vibrate(self, on):
        self.log.append(("vib", on))

    def trace(self, what, value):
        self.log.append((what, value))


def test_patterns_are_well_formed_and_named():
    import firmware.feedback as fb

    pats = [getattr(fb, n) for n in dir(fb) if n.startswith("P_")]
    assert len(pats) == len(NAMES) - 1
    ids = sorted(p[0] >> 4 for p in pats)
    assert ids == list(range(1, len(NAMES)))
    for p in pats:
        assert len(p) % 2 == 1 and len(p) >= 3
        assert all(p[k] > 0 for k in range(1, len(p), 2)), "no zero-length steps"
        assert p[-1] == 0, "every pattern ends with everything off"


def test_player_steps_and_repeats_and_stops():
    out = Out()
    f = Feedback(out)
    t = PERIOD - 150  # across the tick wrap
    f.play(P_SENDING, t, repeat_ms=2500)
    assert out.log[0] == ("pattern", 1)
    seen = 0
    while f.busy and seen < 1000:
        d = f.step(t)
        t = (t + d) % PERIOD
        seen += 1
    tones = [v for k, v in out.log if k == "tone" and v]
    assert len(tones) == 3, "a beep per second for 2.5 s"
    assert f.step(t) == FOREVER and not f.busy
    assert ("led", False) == [x for x in out.log if x[0] == "led"][-1]


def test_quiet_hours_mute_routine_sounds_but_not_alarm_feedback():
    for pat, audible in ((P_LOW_BATTERY, False), (P_FAULT, False), (P_IDENTIFY, False),
                         (P_HELP, True), (P_PREALARM, True)):
        out = Out()
        f = Feedback(out)
        f.quiet = True
        t = 0
        f.play(pat, t)
        while f.busy:
            t += max(1, f.step(t))
        tones = [v for k, v in out.log if k == "tone" and v != TONE_OFF]
        assert bool(tones) == audible, NAMES[pat[0] >> 4]
        assert [v for k, v in out.log if k == "led" and v], "light always shows"


@pytest.mark.parametrize(
    "mv, chem, cells, pct",
    [(3200, "alkaline", 2, 100), (2300, "alkaline", 2, 20), (1700, "alkaline", 2, 0),
     (4200, "lithium-ion", 1, 100), (3750, "lithium-ion", 1, 45), (3000, "lithium-ion", 1, 0),
     (0, "alkaline", 2, -1)],
)
def test_battery_percent(mv, chem, cells, pct):
    assert battery_pct(mv, chem, cells) == pct
