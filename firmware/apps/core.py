"""What every device app shares: numbering, acknowledgements, the radio.

Core turns "send this message" into frames on the air: it numbers the message,
keeps it in the outbox (firmware/apps/outbox.py: the slots, their retries, the
status each message needs, which frame goes next) and drives the radio until
the hub's authenticated acknowledgement settles it. An acknowledgement counts
only if it names a number in the outbox, its tag verifies for that number's
message type (one made for another frame under a number repeated after a
power loss fails) and it raises that number's status: forged, replayed or
stale ones change nothing, not even settings or the clock.

Numbers come from shared.seqblock: a new block end is committed to NVS before
the first number of the block is used. If NVS fails the number is used anyway
(an alarm must go out) and FAULT storage is raised; the block's end is then
only in RAM and the deep-sleep snapshot, and is written again at every
number taken and every wake until NVS takes it. A snapshot whose limit is
above NVS's is therefore kept, never rolled back. A fresh start (power-on, or a
reset that lost the snapshot) cannot know how far past NVS's limit a failing
NVS let numbering run, so it starts FRESH_SKIP above it: numbers come back only
if more than that many were taken while NVS refused every write, then power went,
or if NVS refused writes across two fresh starts (both start from its one limit);
FAULT storage said so.

Each attempt re-encodes the frame (attempt and age change, so does the tag:
BlueZ drops identical adverts) and advertises it, connectable, for
adv_window_ms; the hub connects and writes the acknowledgement. The radio is
switched on when something is to be sent and off hub_linger_ms after the last
advert. All state is ints, bools and int lists: the app snapshots the core and
its outbox into RTC memory (firmware/persist.py), so deep sleep can happen
between retries.
"""

from firmware.apps import alarmrec
from firmware.apps.outbox import Outbox
from firmware.apps.settings import Settings
from firmware.hal import FOREVER
from shared.compat import const
from shared.frame import (
    ACK_LEN,
    ADV_LEN,
    F_STORAGE,
    FRAME_LEN,
    S_HEARTBEAT_MIN,
    S_IDENTIFY,
    S_PREALARM,
    T_FALL_CONFIRMED,
    T_FAULT,
    T_SOS,
    Codec,
    FrameError,
    build_adv,
    is_alarm,
    peek_ack_seq,
)
from shared.seqblock import SEQ_MAX, SeqBlock
from shared.ticks import ticks_add, ticks_diff, ticks_reached

_ADV_FAST_US = const(20000)  # 20 ms: the fastest connectable advertising interval (Core spec)
_ADV_SLOW_US = const(100000)  # routine frames: 100 ms, a fifth of the radio energy
_CONN_MAX_MS = const(4000)  # a hub that stays connected longer is cut off: we must advertise
_AL_RETRY_MS = const(5000)  # a refused alarm-record write is tried again this often (chosen)
_NVS_SEQ = "seq_end"
# Numbers skipped at a fresh start (check_seq): 8 blocks of 32. Every fresh start moves
# numbering on by it (plus the block it commits), an eighth of the hub's 2048-frame replay
# window (shared/replay.py): an alarm pending across fresh starts falls below the window
# after 7 of them if the hub heard later frames (the hub still answers one it has stored,
# hub/pipeline_replays.py). A repeat needs NVS refusing writes for 224+ frames (a PIR
# reporting every 5 min: most of a day of FAULT storage; a button: 9 days of heartbeats).
FRESH_SKIP = const(256)


class Core:
    def __init__(self, hal, cfg, listener):
        self.hal = hal
        self.cfg = cfg
        self.listener = listener  # .on_ack(seq, mtype, status, now), .on_done(seq, mtype, status),
        # .on_prealarm(minutes_left, now), .on_identify(seconds, now)
        self.codec = Codec(cfg.device_id, cfg.key)
        self.seq = SeqBlock(self._nvs_seq())
        self.outbox = Outbox(cfg, self)
        self._frame = bytearray(FRAME_LEN)
        self._adv = bytearray(ADV_LEN)
        self._ack = bytearray(ACK_LEN)
        self._rec = bytearray(alarmrec.REC_MAX)
        self.adv_fast = False  # the frame on the air is an alarm's
        self.radio_idle_at = 0  # tick the radio went idle (linger before switching off)
        self.conn_at = 0
        self.was_connected = False
        self.settings = Settings(hal, cfg)  # what the hub sent, and its clock
        self.hb_at = 0  # tick of the next heartbeat
        self.bad_acks = 0  # malformed or failed the tag: forged, corrupted, wrong key, or
        # made for another frame under the same number
        self.stale_acks = 0  # for no number pending (not verified: it changes nothing), or
        # verified but raising nothing: replays, duplicates
        self.storage_fault = False
        self.seq_unsaved = False  # the block in use is not durable: NVS refused its end
        self.sent_frames = 0
        self.al_dirty = False  # the alarm-class messages changed since the record was written
        self.al_failing = False  # the last write of the record failed
        self.al_retry_at = 0
        self.refused = 0  # type of a message the full outbox refused: step at once when room

    # -- numbering -----------------------------------------------------------
    def _nvs_seq(self):
        v = self.hal.nvs_get(_NVS_SEQ, 0)
        return v + 0x100000000 if v < 0 else v  # NVS holds i32; sequence numbers are u32

    def check_seq(self, restored=True):
        """At boot: go on above every number used, whether NVS or the snapshot knows it.

        A fresh start (`restored` False) knows only NVS: starts FRESH_SKIP above its limit
        (a device that never committed one has used no number: it starts at 1)."""
        lim = self._nvs_seq()
        lim = lim if lim > 1 else 1
        if not restored:
            self.seq = SeqBlock(min(lim + FRESH_SKIP, SEQ_MAX + 1) if lim > 1 else 1)
            return
        sb = self.seq
        if sb.limit > lim:
            # NVS refused this block's end (FAULT storage was raised then): the numbers up to
            # it may have been used. Keep the snapshot and try to make its limit durable.
            self.seq_unsaved = True
            self._commit_seq(sb.limit)
        elif sb.limit < lim:
            self.seq = SeqBlock(lim)  # a snapshot behind NVS is stale: skip, never repeat

    def _commit_seq(self, lim):
        """Write block end `lim` to NVS; True (and committed) if it took it."""
        try:
            self.hal.nvs_set(_NVS_SEQ, lim - 0x100000000 if lim > 0x7FFFFFFF else lim)
        except OSError:
            return False
        self.seq.committed(lim)
        self.seq_unsaved = False
        return True

    def _take_seq(self):
        sb = self.seq
        if sb.needs_commit():
            lim = sb.reservation()
            if not self._commit_seq(lim):
                # Not durable: after a power loss these numbers could come again. Sending
                # matters more: the block is used, uncommitted; the hub hears F_STORAGE.
                # Written again at every number taken (below) and every wake (check_seq).
                sb.limit = lim
                self.seq_unsaved = True
                self.storage_fault = True
        elif self.seq_unsaved:
            self._commit_seq(sb.limit)
        return sb.take()

    # -- sending -------------------------------------------------------------
    def send(self, mtype, arg, now_ms, ref=0, at=None):
        """Queue a message; returns its seq (0 if the outbox is full of alarms).

        `ref`: arg = seq - ref (the protocol's "distance back" fields).
        `at`: event tick if earlier than now (the frame's age covers the delay).
        """
        ob = self.outbox
        n = ob.evicted
        i = ob.free_slot(mtype)
        if ob.evicted != n:
            self.hal.log("outbox: type %d took an older message's slot" % mtype)
        if i < 0:  # six alarms short of DELIVERED: the caller keeps its message and retries
            self.hal.log("outbox full: type %d not queued" % mtype)
            if self.refused != T_SOS and self.refused != T_FALL_CONFIRMED:
                self.refused = mtype  # (an alarm waiting is not hidden by a later refusal)
            return 0
        seq = self._take_seq()
        if ref:
            d = seq - ref
            arg = d if d < 0xFFFFFF else 0xFFFFFF
        ob.put(i, seq, mtype, arg & 0xFFFFFF, now_ms, now_ms if at is None else at)
        if is_alarm(mtype):
            self.al_dirty = True  # recorded before its first transmission (_pump)
        self._report_storage(now_ms)
        return seq

    def _report_storage(self, now_ms):
        if self.storage_fault:
            self.storage_fault = False
            self.send(T_FAULT, (F_STORAGE << 16) | (1 << 8), now_ms)

    # -- the alarm record (firmware/apps/alarmrec.py) ----------------------------
    # Every alarm-class message in the outbox is also in NVS until it is done, so that not
    # even a power loss (RTC memory gone) loses it. A change (queued, settled, evicted,
    # dropped) marks the record dirty; it is written once per step before anything goes
    # on the air (_pump), so a cancel and the SOS it drops change it in one atomic write.
    def _save_alarms(self):
        try:
            self.hal.nvs_set_blob(alarmrec.KEY, self._rec, alarmrec.pack(self._rec, self.outbox))
        except OSError:
            # still dirty: tried again (_pump, every _AL_RETRY_MS) until it is written, else a
            # power loss meanwhile lost a pending SOS or brought back a cancelled one; the
            # fault once per run of failures, not once per try
            if not self.al_failing:
                self.storage_fault = True
            self.al_failing = True
            self.al_dirty = True
            return False
        self.al_dirty = self.al_failing = False
        return True

    def recover_alarm(self, now_ms):
        """After a fresh start: re-queue the alarm-class messages pending when power went.

        Each goes out again with its own number (a retransmission: the hub acknowledges a
        duplicate with its current status); its age restarts at 0 (its tick is gone).
        Returns the one for the app to show: the latest SOS / FALL_CONFIRMED, else the
        latest message; 0 if none.
        """
        recs, old = alarmrec.read(self.hal, self._rec)
        ob = self.outbox
        show = 0
        show_alarm = False
        for seq, mtype, arg in recs:
            if not seq or not is_alarm(mtype) or ob.slot(seq) >= 0:
                continue
            if seq >= self.seq.limit:  # used although NVS never got its block's end:
                # so were numbers above it, maybe: skip as a fresh start does (check_seq)
                self.seq = SeqBlock(min(seq + FRESH_SKIP, SEQ_MAX + 1))
            i = ob.free_slot(mtype)
            if i < 0:
                continue
            ob.put(i, seq, mtype, arg, now_ms, now_ms)
            self.hal.log("re-sending seq %d type %d after power loss" % (seq, mtype))
            a = mtype == T_SOS or mtype == T_FALL_CONFIRMED
            if (a and not show_alarm) or (a == show_alarm and seq > show):
                show = seq
                show_alarm = a
        if old and recs and self._save_alarms():
            try:
                alarmrec.forget_old(self.hal)
            except OSError:
                self.storage_fault = True
        return show

    def on_freed(self, seq, mtype, status):
        """The outbox is done with `seq`: the record changes, the app hears (unless dropped)."""
        if is_alarm(mtype):
            self.al_dirty = True
        if status >= 0:
            self.listener.on_done(seq, mtype, status)

    # -- acknowledgements ----------------------------------------------------
    def _take_acks(self, now_ms):
        radio = self.hal.radio
        while True:
            n = radio.take_ack(self._ack)
            if n <= 0:
                return
            if n != ACK_LEN:
                self.bad_acks += 1
                self.hal.trace("bad_ack", n)
                continue
            ob = self.outbox
            # The tag covers the type of the frame acknowledged (docs/protocol.md): look the
            # claimed number up first, changing nothing, and verify with that frame's type,
            # so an ack made for another frame under the same number (one repeated after a
            # power loss) fails. A number with nothing pending needs no verifying: whatever
            # such an ack says, it changes nothing, authentic or not (and a junk write costs
            # no HMAC). It is counted as stale, as a verified replay was.
            try:
                seq = peek_ack_seq(self._ack)
            except FrameError:
                self.bad_acks += 1
                self.hal.trace("bad_ack", n)
                continue
            mtype = ob.type_of(seq)
            if not mtype:
                self.stale_acks += 1
                self.hal.trace("stale_ack", seq)
                continue
            try:
                ack = self.codec.verify_ack(self._ack, mtype)
            except FrameError:
                self.bad_acks += 1
                self.hal.trace("bad_ack", n)
                continue
            i = ob.match(ack.seq, ack.status, now_ms)
            if i < 0:
                self.stale_acks += 1
                self.hal.trace("stale_ack", ack.seq)
                continue
            st = self.settings
            if ack.clock_valid:
                st.clock(ack.tod_s, ack.weekday, now_ms)
            if ack.setting:
                try:
                    if st.apply(ack.setting, ack.value) and ack.setting == S_HEARTBEAT_MIN:
                        self.hb_at = ticks_add(now_ms, st.hb_min * 60000)  # re-plan from now
                except OSError:
                    self.storage_fault = True
                if ack.setting == S_PREALARM:
                    self.listener.on_prealarm(ack.value, now_ms)
                elif ack.setting == S_IDENTIFY:
                    self.listener.on_identify(ack.value, now_ms)
            ob.raise_status(i, ack.status, now_ms)
            seq = ob.o_seq[i]
            self.listener.on_ack(seq, ob.o_type[i], ack.status, now_ms)
            ob.settle(i, seq)

    # -- the radio -----------------------------------------------------------
    def _transmit(self, i, now_ms):
        ob = self.outbox
        self.codec.encode(self._frame, ob.o_seq[i], ob.o_type[i], ob.o_arg[i],
                          ticks_diff(now_ms, ob.o_at[i]), ob.retries[i].attempts + 1,
                          ob.o_old[i])
        build_adv(self._adv, self._frame)
        radio = self.hal.radio
        if not radio.is_on:
            radio.on()
        self.adv_fast = is_alarm(ob.o_type[i])
        if not radio.connected:
            radio.advertise(self._adv, _ADV_FAST_US if self.adv_fast else _ADV_SLOW_US, True)
        ob.sent(i, now_ms)
        self.sent_frames += 1

    def _pump(self, now_ms):
        radio = self.hal.radio
        ob = self.outbox
        ob.expire(now_ms)
        # before anything goes on the air: what is sent is recorded (after a failed write, a
        # new try now and then: a flash that refuses writes must not stall the radio)
        if self.al_dirty and (not self.al_failing or ticks_reached(now_ms, self.al_retry_at)):
            if not self._save_alarms():
                self.al_retry_at = ticks_add(now_ms, _AL_RETRY_MS)
            self._report_storage(now_ms)
        if radio.connected:
            if not self.was_connected:
                self.was_connected = True
                self.conn_at = now_ms
            elif ticks_diff(now_ms, self.conn_at) >= _CONN_MAX_MS:
                radio.disconnect()
        else:
            self.was_connected = False
        i = ob.pick(now_ms)
        if i >= 0:
            self._transmit(i, now_ms)
        in_window = ob.in_window(now_ms)
        if in_window and not radio.advertising and not radio.connected:
            # The hub disconnected (or never came): advertise again for the rest of the window.
            radio.advertise(self._adv, _ADV_FAST_US if self.adv_fast else _ADV_SLOW_US, True)
        if not in_window and radio.advertising:
            radio.stop()
        if radio.is_on and not radio.advertising and not radio.connected:
            if not ob.busy():
                radio.off()  # nothing left to send: BLE off at once
                self.radio_idle_at = 0
            elif not self.radio_idle_at:
                self.radio_idle_at = now_ms | 1
            elif not ob.busy_soon(now_ms) and ticks_diff(now_ms, self.radio_idle_at) >= \
                    self.cfg.hub_linger_ms:
                radio.off()  # the next retry is far: BLE off, maybe deep sleep
                self.radio_idle_at = 0
        else:
            self.radio_idle_at = 0

    def step(self, now_ms):
        """Acknowledgements, settings and the radio; returns ms until it must run again."""
        self._take_acks(now_ms)
        self.settings.expire(now_ms)
        self._pump(now_ms)
        return self.next_ms(now_ms)

    def next_ms(self, now_ms):
        ob = self.outbox
        if self.refused and ob.victim(self.refused) >= 0:
            self.refused = 0
            return 0  # room again (an ack settled a message): the app may queue what waited
        d = ob.next_ms(now_ms, ticks_diff(self.hb_at, now_ms))
        radio = self.hal.radio
        if ob.adv_slot >= 0 and radio.advertising:
            d = min(d, ticks_diff(ob.adv_until, now_ms))
        if radio.connected:
            d = min(d, 50)  # watch the connection time; the write itself wakes the loop
        elif radio.is_on and not radio.advertising and self.radio_idle_at:
            rem = self.cfg.hub_linger_ms - ticks_diff(now_ms, self.radio_idle_at)
            if rem > 0:  # past it, the radio stays up only for a send due soon (already in d)
                d = min(d, rem)
        if d < 0:
            return 0
        return d if d < FOREVER else FOREVER

    def radio_quiet(self):
        """Nothing on the air and no connection: deep sleep will not cut anything short."""
        r = self.hal.radio
        return not r.advertising and not r.connected
