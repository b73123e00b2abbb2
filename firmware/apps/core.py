"""What every device app shares: the outbox, numbering, acknowledgements, radio.

Core turns "send this message" into frames on the air until the hub's
authenticated acknowledgement reaches the status the message needs:

  SOS, FALL_CONFIRMED           -> HELP (an operator acknowledged); retried
                                   forever on the shared schedule (alarm),
                                   but only help_wait_min after DELIVERED
  SOS_CANCEL, TEST, FALL_CANCELLED -> DELIVERED (the platform has it)
  FALL_SUSPECTED, routine        -> STORED; routine gives up after
                                   routine_attempts (the next heartbeat tells)

Routine frames are held back while an alarm has no acknowledgement at all
(docs/protocol.md). An acknowledgement counts only if its tag verifies, it
names a number in the outbox and raises that number's status: forged,
replayed or stale ones change nothing, not even settings or the clock.

Numbers come from shared.seqblock: a new block end is committed to NVS before
the first number of the block is used. If NVS fails the number is used anyway
(an alarm must go out) and FAULT storage is raised.

Each attempt re-encodes the frame (attempt and age change, so does the tag:
BlueZ drops identical adverts) and advertises it, connectable, for
adv_window_ms; the hub connects and writes the acknowledgement. The radio is
switched on when something is to be sent and off hub_linger_ms after the last
advert. All state is ints, bools and int lists: the app snapshots it into RTC
memory (firmware/persist.py), so deep sleep can happen between retries.
"""

from firmware.apps.settings import Settings
from firmware.hal import FOREVER
from shared.compat import const
from shared.frame import (
    ACK_DELIVERED,
    ACK_HELP,
    ACK_LEN,
    ACK_STORED,
    ADV_LEN,
    F_STORAGE,
    FRAME_LEN,
    S_HEARTBEAT_MIN,
    S_IDENTIFY,
    S_PREALARM,
    T_FALL_CANCELLED,
    T_FALL_CONFIRMED,
    T_FAULT,
    T_SOS,
    T_SOS_CANCEL,
    T_TEST,
    Codec,
    FrameError,
    build_adv,
    is_alarm,
)
from shared.retry import Retry
from shared.seqblock import SeqBlock
from shared.ticks import ticks_add, ticks_diff, ticks_reached

SLOTS = const(6)  # messages in flight: SOS + cancel + fault + low battery + heartbeat + 1
_ADV_FAST_US = const(20000)  # 20 ms: the fastest connectable advertising interval (Core spec)
_ADV_SLOW_US = const(100000)  # routine frames: 100 ms, a fifth of the radio energy
_CONN_MAX_MS = const(4000)  # a hub that stays connected longer is cut off: we must advertise
_NVS_SEQ = "seq_end"
_NVS_AL_SEQ = "al_seq"
_NVS_AL_TYPE = "al_type"
_NVS_AL_ARG = "al_arg"


def target_status(mtype):
    if mtype == T_SOS or mtype == T_FALL_CONFIRMED:
        return ACK_HELP
    if mtype == T_SOS_CANCEL or mtype == T_TEST or mtype == T_FALL_CANCELLED:
        return ACK_DELIVERED
    return ACK_STORED


class Core:
    def __init__(self, hal, cfg, listener):
        self.hal = hal
        self.cfg = cfg
        self.listener = listener  # .on_ack(seq, mtype, status, now), .on_done(seq, mtype, status),
        # .on_prealarm(minutes_left, now), .on_identify(seconds, now)
        self.codec = Codec(cfg.device_id, cfg.key)
        self.seq = SeqBlock(self._nvs_seq())
        self._seed = cfg.device_id & 0xFFFF
        self.o_seq = [0] * SLOTS  # 0: free slot
        self.o_type = [0] * SLOTS
        self.o_arg = [0] * SLOTS
        self.o_at = [0] * SLOTS  # tick of the event (frames carry its age)
        self.o_status = [0] * SLOTS  # best acknowledgement status so far
        self.o_since = [0] * SLOTS  # tick DELIVERED was reached (HELP wait)
        self.retries = [Retry() for _ in range(SLOTS)]
        self._frame = bytearray(FRAME_LEN)
        self._adv = bytearray(ADV_LEN)
        self._ack = bytearray(ACK_LEN)
        self.adv_slot = -1  # slot whose frame is on the air
        self.adv_until = 0
        self.adv_fast = False
        self.radio_idle_at = 0  # tick the radio went idle (linger before switching off)
        self.conn_at = 0
        self.was_connected = False
        self.settings = Settings(hal, cfg)  # what the hub sent, and its clock
        self.hb_at = 0  # tick of the next heartbeat
        self.bad_acks = 0  # failed the tag or malformed: forged, corrupted, wrong key
        self.stale_acks = 0  # verified but matching nothing pending: replays, duplicates
        self.gave_up = 0
        self.storage_fault = False
        self.sent_frames = 0
        self.al_seq = 0  # the alarm recorded in NVS (0: none)

    # -- numbering -----------------------------------------------------------
    def _nvs_seq(self):
        v = self.hal.nvs_get(_NVS_SEQ, 0)
        return v + 0x100000000 if v < 0 else v  # NVS holds i32; sequence numbers are u32

    def check_seq(self):
        """After a restore: the NVS limit is the truth; a snapshot that disagrees is dropped."""
        lim = self._nvs_seq()
        sb = self.seq
        if sb.limit != (lim if lim > 1 else 1):
            nxt = sb.next
            self.seq = SeqBlock(lim)
            self.seq.resume(nxt)

    def _take_seq(self):
        sb = self.seq
        if sb.needs_commit():
            lim = sb.reservation()
            try:
                self.hal.nvs_set(_NVS_SEQ, lim - 0x100000000 if lim > 0x7FFFFFFF else lim)
            except OSError:
                # Not durable: after a power loss these numbers could come again.
                # Sending matters more; the hub hears F_STORAGE.
                self.storage_fault = True
            sb.committed(lim)
        return sb.take()

    # -- sending -------------------------------------------------------------
    def send(self, mtype, arg, now_ms, ref=0, at=None):
        """Queue a message; returns its seq (0 if the outbox is full of alarms).

        `ref`: arg = seq - ref (the protocol's "distance back" fields).
        `at`: event tick if earlier than now (the frame's age covers the delay).
        """
        i = self._free_slot(is_alarm(mtype))
        if i < 0:
            self.hal.log("outbox full: type %d dropped" % mtype)
            return 0
        seq = self._take_seq()
        if ref:
            d = seq - ref
            arg = d if d < 0xFFFFFF else 0xFFFFFF
        self._queue(i, seq, mtype, arg & 0xFFFFFF, now_ms, now_ms if at is None else at)
        if is_alarm(mtype):
            self._note_alarm(seq, mtype, arg & 0xFFFFFF)
        if self.storage_fault:
            self.storage_fault = False
            self.send(T_FAULT, (F_STORAGE << 16) | (1 << 8), now_ms)
        return seq

    def _queue(self, i, seq, mtype, arg, now_ms, at):
        self.o_seq[i] = seq
        self.o_type[i] = mtype
        self.o_arg[i] = arg
        self.o_at[i] = at
        self.o_status[i] = 0
        self.o_since[i] = 0
        r = self.retries[i]
        r.max_attempts = 0 if is_alarm(mtype) else self.cfg.routine_attempts
        r.start(now_ms, (self._seed * 31 + seq) & 0xFFFF)

    # The latest alarm-class message also goes to NVS until it is done, so that
    # not even a power loss (RTC memory gone) loses it: recover_alarm() re-sends
    # it after power-on with its own number (a retransmission; the hub
    # acknowledges a duplicate with its current status). Its age restarts at 0:
    # the tick it happened at did not survive.
    def _note_alarm(self, seq, mtype, arg):
        try:
            self.hal.nvs_set(_NVS_AL_TYPE, mtype)
            self.hal.nvs_set(_NVS_AL_ARG, arg)
            self.hal.nvs_set(_NVS_AL_SEQ, seq - 0x100000000 if seq > 0x7FFFFFFF else seq)
            self.al_seq = seq  # written last: the record is valid only once the number is there
        except OSError:
            self.storage_fault = True

    def _clear_alarm(self, seq):
        if seq and seq == self.al_seq:
            self.al_seq = 0
            try:
                self.hal.nvs_set(_NVS_AL_SEQ, 0)
            except OSError:
                self.storage_fault = True

    def recover_alarm(self, now_ms):
        """After a fresh start: re-send an alarm that was still pending when power went."""
        v = self.hal.nvs_get(_NVS_AL_SEQ, 0)
        seq = v + 0x100000000 if v < 0 else v
        mtype = self.hal.nvs_get(_NVS_AL_TYPE, 0)
        if not seq or seq >= self.seq.limit or not is_alarm(mtype) or self._slot(seq) >= 0:
            return 0
        i = self._free_slot(True)
        if i < 0:
            return 0
        self._queue(i, seq, mtype, self.hal.nvs_get(_NVS_AL_ARG, 0) & 0xFFFFFF, now_ms, now_ms)
        self.al_seq = seq
        self.hal.log("re-sending alarm seq %d type %d after power loss" % (seq, mtype))
        return seq

    def _free_slot(self, alarm):
        oldest = -1
        for i in range(SLOTS):
            if self.o_seq[i] == 0:
                return i
            if not is_alarm(self.o_type[i]) and (
                oldest < 0 or ticks_diff(self.o_at[oldest], self.o_at[i]) > 0
            ):
                oldest = i
        if oldest >= 0:  # evict the oldest routine message: the next heartbeat re-reports
            self._free(oldest, 0)
        return oldest

    def _free(self, i, status):
        seq = self.o_seq[i]
        mtype = self.o_type[i]
        self.retries[i].stop()
        self.o_seq[i] = 0
        self._clear_alarm(seq)
        if self.adv_slot == i:
            self.adv_slot = -1
        if status >= 0:
            self.listener.on_done(seq, mtype, status)

    def _slot(self, seq):
        if seq:
            for i in range(SLOTS):
                if self.o_seq[i] == seq:
                    return i
        return -1

    def drop(self, seq):
        """Stop sending `seq` (superseded by a cancel or a test); no callback."""
        i = self._slot(seq)
        if i >= 0:
            self._free(i, -1)

    def pending(self, seq):
        return self._slot(seq) >= 0

    def status(self, seq):
        i = self._slot(seq)
        return self.o_status[i] if i >= 0 else -1

    def type_of(self, seq):
        i = self._slot(seq)
        return self.o_type[i] if i >= 0 else 0

    def overdue(self, seq, now_ms):
        """No acknowledgement at all for longer than the retry schedule's notify time (25 s)."""
        i = self._slot(seq)
        return i >= 0 and self.o_status[i] == 0 and self.retries[i].overdue(now_ms)

    def busy(self):
        for i in range(SLOTS):
            if self.o_seq[i]:
                return True
        return False

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
            try:
                ack = self.codec.verify_ack(self._ack)
            except FrameError:
                self.bad_acks += 1
                self.hal.trace("bad_ack", n)
                continue
            i = self._slot(ack.seq)
            if i >= 0 and i == self.adv_slot:
                self.adv_until = now_ms  # the hub has this frame: no need to stay on the air
            if i < 0 or ack.status <= self.o_status[i]:
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
            self.o_status[i] = ack.status
            if ack.status >= ACK_DELIVERED and not self.o_since[i]:
                self.o_since[i] = now_ms | 1  # nonzero marks "set"
            seq = self.o_seq[i]
            self.listener.on_ack(seq, self.o_type[i], ack.status, now_ms)
            if self.o_seq[i] == seq and ack.status >= target_status(self.o_type[i]):
                self._free(i, ack.status)

    # -- the radio -----------------------------------------------------------
    def _held(self):
        """Routine frames are held back while an alarm has no acknowledgement at all."""
        for i in range(SLOTS):
            if self.o_seq[i] and is_alarm(self.o_type[i]) and self.o_status[i] == 0:
                return True
        return False

    def _pick(self, now_ms):
        """The due slot to transmit: alarms first, then the oldest event.

        One frame per advertising window: a frame on the air keeps it until the hub
        acknowledged it (that ends the window) or it ran out; only an alarm preempts a
        routine frame. Two frames due together thus share one wake, one after the other.
        """
        held = self._held()
        best = -1
        for i in range(SLOTS):
            if not self._eligible(i, now_ms, held) or not self.retries[i].due(now_ms):
                continue
            a = is_alarm(self.o_type[i])
            if best < 0:
                best = i
                continue
            ab = is_alarm(self.o_type[best])
            if (a and not ab) or (a == ab and ticks_diff(self.o_at[best], self.o_at[i]) > 0):
                best = i
        return best

    def _eligible(self, i, now_ms, held):
        """Slot i may go on the air now (its retry timer permitting)."""
        if not self.o_seq[i] or not self.retries[i].active:
            return False
        a = is_alarm(self.o_type[i])
        if held and not a:
            return False
        cur = self.adv_slot
        if cur >= 0 and i != cur and not ticks_reached(now_ms, self.adv_until):
            return a and not is_alarm(self.o_type[cur])  # only an alarm preempts the air
        return True

    def _transmit(self, i, now_ms):
        r = self.retries[i]
        self.codec.encode(self._frame, self.o_seq[i], self.o_type[i], self.o_arg[i],
                          ticks_diff(now_ms, self.o_at[i]), r.attempts + 1)
        build_adv(self._adv, self._frame)
        radio = self.hal.radio
        if not radio.is_on:
            radio.on()
        self.adv_fast = is_alarm(self.o_type[i])
        if not radio.connected:
            radio.advertise(self._adv, _ADV_FAST_US if self.adv_fast else _ADV_SLOW_US, True)
        r.sent(now_ms)
        self.sent_frames += 1
        self.adv_slot = i
        self.adv_until = ticks_add(now_ms, self.cfg.adv_window_ms)

    def _pump(self, now_ms):
        radio = self.hal.radio
        for i in range(SLOTS):  # routine messages that ran out of attempts (after the last window)
            if self.o_seq[i] and not self.retries[i].active and not (
                self.adv_slot == i and not ticks_reached(now_ms, self.adv_until)
            ):
                self.gave_up += 1
                self._free(i, 0)
            elif (self.o_seq[i] and self.o_since[i]
                  and ticks_diff(now_ms, self.o_since[i]) >= self.cfg.help_wait_min * 60000):
                self._free(i, self.o_status[i])  # the platform has it; HELP never came
        if radio.connected:
            if not self.was_connected:
                self.was_connected = True
                self.conn_at = now_ms
            elif ticks_diff(now_ms, self.conn_at) >= _CONN_MAX_MS:
                radio.disconnect()
        else:
            self.was_connected = False
        i = self._pick(now_ms)
        if i >= 0:
            self._transmit(i, now_ms)
        in_window = self.adv_slot >= 0 and not ticks_reached(now_ms, self.adv_until)
        if in_window and not radio.advertising and not radio.connected:
            # The hub disconnected (or never came): advertise again for the rest of the window.
            radio.advertise(self._adv, _ADV_FAST_US if self.adv_fast else _ADV_SLOW_US, True)
        if not in_window and radio.advertising:
            radio.stop()
        if radio.is_on and not radio.advertising and not radio.connected:
            if not self.busy():
                radio.off()  # nothing left to send: BLE off at once
                self.radio_idle_at = 0
            elif not self.radio_idle_at:
                self.radio_idle_at = now_ms | 1
            elif not self.busy_soon(now_ms) and ticks_diff(now_ms, self.radio_idle_at) >= \
                    self.cfg.hub_linger_ms:
                radio.off()  # the next retry is far: BLE off, maybe deep sleep
                self.radio_idle_at = 0
        else:
            self.radio_idle_at = 0

    def busy_soon(self, now_ms):
        """A transmission is due within the linger time: keep the radio up."""
        for i in range(SLOTS):
            if self.o_seq[i] and self.retries[i].active and not (
                self._held() and not is_alarm(self.o_type[i])
            ) and ticks_diff(self.retries[i].next_at, now_ms) < self.cfg.hub_linger_ms:
                return True
        return False

    def step(self, now_ms):
        """Acknowledgements, settings and the radio; returns ms until it must run again."""
        self._take_acks(now_ms)
        self.settings.expire(now_ms)
        self._pump(now_ms)
        return self.next_ms(now_ms)

    def next_ms(self, now_ms):
        d = ticks_diff(self.hb_at, now_ms)
        radio = self.hal.radio
        held = self._held()  # a held-back frame is no deadline: the alarm's ack wakes us
        for i in range(SLOTS):
            if self.o_seq[i]:
                if self._eligible(i, now_ms, held):
                    d = min(d, ticks_diff(self.retries[i].next_at, now_ms))
                if self.o_since[i]:
                    d = min(d, self.cfg.help_wait_min * 60000 - ticks_diff(now_ms, self.o_since[i]))
        if self.adv_slot >= 0 and radio.advertising:
            d = min(d, ticks_diff(self.adv_until, now_ms))
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
