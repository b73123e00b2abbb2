"""A failed NVS write of the block end never brings frame numbers back (firmware/apps/core.py).

When NVS refuses the new block end, the block is used anyway (an alarm must go out) and
FAULT storage is raised. The block's end then lives in RAM and the deep-sleep snapshot:
a wake must keep it (never roll back to the older NVS limit, which re-issued numbers the
hub had already seen: an SOS got an old heartbeat's DELIVERED), and NVS is written again
until it takes it.
"""

from simkit import MIN, SEC, Rig

from firmware.apps.core import FRESH_SKIP, Core
from firmware.hal import WAKE_WATCHDOG
from shared.frame import F_STORAGE, T_FAULT, T_SOS
from shared.seqblock import SeqBlock


def storage_faults(rig):
    return [f for f in rig.messages(T_FAULT) if f.arg >> 16 == F_STORAGE]


def fail_once(rig, value):
    """The NVS write of block end `value` fails once; NVS works again afterwards."""
    fails = []

    def hook(key, v, phase):
        if key == "seq_end" and phase == "before" and v == value and not fails:
            fails.append(v)
            raise OSError("NVS write failed once")

    rig.plat.nvs_hook = hook
    return fails


def test_nvs_failing_for_good_then_an_sos_gets_its_own_number_and_ack():
    # Demo d1: NVS stops taking writes (flash worn); the button keeps deep-sleeping.
    rig = Rig("button", heartbeat_min=1)
    rig.run(40 * MIN)
    assert rig.plat.nvs["seq_end"] == 65
    rig.plat.nvs_fail = True
    rig.run(40 * MIN)
    assert rig.dev.sleeps > 60
    t0 = rig.now + SEC
    rig.press(t0, 200)
    rig.run(2 * MIN)
    assert rig.unique() == ""
    (sos,) = rig.messages(T_SOS)
    assert rig.hub.first_seen[(rig.cfg.device_id, sos.seq)][1] == T_SOS, "a new number"
    assert sos.seq > max(f.seq for t, _n, f in rig.hub.frames if t < t0)
    pats = rig.patterns(since=t0)
    assert pats[0] == "SENDING" and pats.index("RECEIVED") < pats.index("CALLING")
    assert storage_faults(rig), "the hub was told numbers are not durable"


def test_one_failed_block_commit_is_made_good_at_the_next_wake():
    # Demo d1b: the write of block end 65 fails once, NVS is fine afterwards.
    rig = Rig("button", heartbeat_min=1)
    fails = fail_once(rig, 65)
    rig.run(45 * MIN)
    assert fails == [65]
    assert rig.unique() == ""
    assert len(storage_faults(rig)) == 1
    used = max(f.seq for f in rig.frames())
    assert rig.plat.nvs["seq_end"] > used, "NVS covers every number used again"
    # So even a power loss now repeats nothing.
    rig.dev.power_loss(5 * SEC)
    rig.run(10 * MIN)
    assert rig.unique() == ""


def test_a_device_that_never_sleeps_commits_again_at_its_next_number():
    # The bracelet never deep-sleeps (no restore, no check_seq): the next number it takes
    # retries the write, so NVS is behind for one message at most.
    rig = Rig("bracelet", imu=lambda t: (0, 0, 1000), heartbeat_min=1)
    fails = fail_once(rig, 33)  # the first block: numbers 1..32
    rig.run(5 * MIN)
    assert fails == [33]
    assert 2 < max(f.seq for f in rig.frames()) < 33, "still inside the failed block"
    assert rig.plat.nvs["seq_end"] == 33
    rig.dev.power_loss(5 * SEC)  # RAM gone: only NVS tells where numbering stands
    rig.run(5 * MIN)
    assert rig.unique() == ""


def test_a_watchdog_reset_while_nvs_is_behind_still_skips_ahead():
    # A reset that drops the snapshot can only fall back on NVS (and starts FRESH_SKIP above
    # it). What must hold as well: a snapshot AHEAD of NVS is never replaced by it.
    rig = Rig("button", heartbeat_min=1)
    rig.plat.nvs_fail = True
    rig.run(50 * MIN)  # one failed block commit (33 -> 65), numbers above 33 in use
    while rig.dev.state != "deep":
        rig.run(20)
    rig.plat.nvs_fail = False
    rig.run(2 * MIN)  # a wake: the restored block end is written again
    assert rig.plat.nvs["seq_end"] > max(f.seq for f in rig.frames())
    rig.dev._reset(WAKE_WATCHDOG, rig.now)
    rig.run(5 * MIN)
    assert rig.unique() == ""


def test_check_seq_keeps_a_snapshot_ahead_of_nvs_and_skips_one_behind():
    class Hal:
        def __init__(self, limit):
            self.nvs = {"seq_end": limit}
            self.fail = False

        def nvs_get(self, key, default):
            return self.nvs.get(key, default)

        def nvs_set(self, key, value):
            if self.fail:
                raise OSError("full")
            self.nvs[key] = value

    hal = Hal(33)
    core = Core.__new__(Core)  # only the numbering: no radio, settings or outbox needed
    core.hal = hal
    core.seq_unsaved = False
    core.seq = SeqBlock(65)  # as restored from a snapshot; NVS still says 33
    core.seq.resume(50)
    hal.fail = True
    core.check_seq()
    assert (core.seq.limit, core.seq.next, core.seq_unsaved) == (65, 50, True)
    hal.fail = False
    assert core._take_seq() == 50 and hal.nvs["seq_end"] == 65 and not core.seq_unsaved
    core.seq = SeqBlock(33)  # a snapshot behind NVS: stale, skip to the NVS limit
    core.seq.resume(20)
    hal.nvs["seq_end"] = 97
    core.check_seq()
    assert (core.seq.limit, core.seq.next) == (97, 97)


def test_a_power_loss_after_days_of_failing_nvs_repeats_no_number():
    # The worst case the fresh-start skip covers: NVS refuses every write for hours (the
    # hub heard FAULT storage), numbering runs far past NVS's limit, then the power goes
    # and RAM with it. The old start at NVS's limit gave numbers the hub had already seen
    # (a same-type repeat, an SOS under an old SOS's number, got the old one's status).
    rig = Rig("button", heartbeat_min=1)
    rig.run(10 * MIN)
    rig.plat.nvs_fail = True
    committed = rig.plat.nvs["seq_end"]
    rig.run(3 * 60 * MIN)  # ~180 heartbeats past the last block end NVS took
    used = max(f.seq for f in rig.frames())
    assert committed + 150 < used < committed + FRESH_SKIP
    assert storage_faults(rig)
    t_loss = rig.now
    rig.dev.power_loss(5 * SEC)
    rig.run(10 * MIN)  # NVS still failing: no new block end is durable either
    assert rig.unique() == ""
    after = [f.seq for t, _n, f in rig.hub.frames if t > t_loss]
    assert after and min(after) == committed + FRESH_SKIP, "above every number used"


def test_a_fresh_device_starts_at_one_and_a_wake_skips_nothing():
    rig = Rig("button", power_on=False, heartbeat_min=1)
    rig.dev.power_on()
    rig.run(30 * MIN)
    seqs = sorted({f.seq for f in rig.frames()})
    assert rig.dev.sleeps > 10, "it slept and woke between heartbeats"
    assert seqs == list(range(1, len(seqs) + 1)), "no gap: wakes resume the block"
    rig.dev.power_loss(5 * SEC)
    rig.run(3 * MIN)
    later = sorted({f.seq for f in rig.frames()} - set(seqs))
    assert later[0] == 33 + FRESH_SKIP, "a power-on starts FRESH_SKIP past NVS's block end"


def test_check_seq_at_a_fresh_start_skips_fresh_skip_numbers_above_nvs():
    hal = type("Hal", (), {"nvs_get": lambda self, key, default: self.nvs.get(key, default)})()
    core = Core.__new__(Core)
    core.hal = hal
    hal.nvs = {"seq_end": 65}
    core.seq = SeqBlock(65)
    core.check_seq(restored=False)
    assert (core.seq.limit, core.seq.next) == (65 + FRESH_SKIP, 65 + FRESH_SKIP)
    hal.nvs = {}  # never committed: nothing used
    core.check_seq(restored=False)
    assert (core.seq.limit, core.seq.next) == (1, 1)
    hal.nvs = {"seq_end": -1}  # 2**32 - 1 as NVS's i32: no room left to skip
    core.check_seq(restored=False)
    assert core.seq.limit == 2**32
