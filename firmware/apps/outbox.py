"""The outbox: messages waiting for the hub's acknowledgement, one slot each.

A message stays in its slot, retried on its own schedule (shared.retry), until
the hub's acknowledgement reaches the status it needs:

  SOS, FALL_CONFIRMED           -> HELP (an operator acknowledged); retried
                                   forever on the shared schedule (alarm),
                                   but only help_wait_min after DELIVERED
  SOS_CANCEL, TEST, FALL_CANCELLED -> DELIVERED (the platform has it)
  FALL_SUSPECTED, routine        -> STORED; routine gives up after
                                   routine_attempts (the next heartbeat tells)

A full outbox makes room by evicting the message that loses least, oldest
first among equals; what a new message may evict depends on its type:

  rank  slot holds                                  loses              evicted for
  0     a routine message                           one report (the    any message
                                                    next one re-tells)
  1     SOS_CANCEL, TEST, FALL_CANCELLED already    feedback only      any message
        STORED (the hub has it durably and forwards
        alarm-class messages first, docs/protocol.md)
  2     SOS_CANCEL, TEST, FALL_SUSPECTED,           the message (a     alarm-class
        FALL_CANCELLED the hub has not stored       lost cancel or
                                                    test leaves an
                                                    alarm standing:
                                                    the safe side)
  3     SOS, FALL_CONFIRMED already DELIVERED       HELP feedback      SOS,
        (the platform has it)                                          FALL_CONFIRMED
  -     SOS, FALL_CONFIRMED short of DELIVERED      never evicted

So an SOS, FALL_CONFIRMED or FALL_SUSPECTED always gets a slot unless all six
hold alarms short of DELIVERED (then an alarm is being sent anyway; the app
keeps its new alarm and queues it as soon as a slot frees, firmware/apps/sos.py).
Routine frames are held back while an alarm has no acknowledgement at all
(docs/protocol.md). Which due message goes on the air next: alarms first,
then the oldest event, one per advertising window. An acknowledgement counts
only if it names a number in the outbox and raises that number's status.

Event age: a tick distance is exact only up to 2**29 ms (6.2 days, shared/ticks.py)
and an alarm may wait longer (hub broken for a week). Once a day the whole
minutes of a slot's age move from its event tick into o_old (minutes,
saturating where the frame's age field does); the device is awake at least
every retry (<= 66 s) while a slot is in use, so the distance never wraps.

The outbox only keeps the books: the Core numbers the messages, verifies the
acknowledgements and drives the radio. Freeing a slot calls
`listener.on_freed(seq, mtype, status)`; status -1: dropped (superseded).
All state is ints, bools and int lists (o_*: one entry per slot, 0 seq = free)
plus one Retry per slot: App._all_objects (firmware/apps/common.py) lists the
outbox and each Retry for the RTC-memory snapshot (firmware/persist.py), so
deep sleep can happen between retries.
"""

from shared.compat import const
from shared.frame import (
    ACK_DELIVERED,
    ACK_HELP,
    ACK_STORED,
    T_FALL_CANCELLED,
    T_FALL_CONFIRMED,
    T_SOS,
    T_SOS_CANCEL,
    T_TEST,
    is_alarm,
)
from shared.retry import Retry
from shared.ticks import ticks_add, ticks_diff, ticks_reached

SLOTS = const(6)  # messages in flight: SOS + cancel + fault + low battery + heartbeat + 1
_KEEP = const(9)  # eviction rank of an alarm short of DELIVERED: above every allowance
_FOLD_MS = const(86400000)  # a day: ages move into o_old long before a tick distance wraps
_OLD_MAX_MIN = const(0x7FFF)  # the frame's age field saturates here (22.7 days, protocol)


def target_status(mtype):
    if mtype == T_SOS or mtype == T_FALL_CONFIRMED:
        return ACK_HELP
    if mtype == T_SOS_CANCEL or mtype == T_TEST or mtype == T_FALL_CANCELLED:
        return ACK_DELIVERED
    return ACK_STORED


def _allowance(mtype):
    """The highest eviction rank a new message of this type may evict (table above)."""
    if mtype == T_SOS or mtype == T_FALL_CONFIRMED:
        return 3
    return 2 if is_alarm(mtype) else 1



class Outbox:
    def __init__(self, cfg, listener):
        self.cfg = cfg
        self.listener = listener  # .on_freed(seq, mtype, status)
        self._seed = cfg.device_id & 0xFFFF
        self.o_seq = [0] * SLOTS  # 0: free slot
        self.o_type = [0] * SLOTS
        self.o_arg = [0] * SLOTS
        self.o_at = [0] * SLOTS  # tick of the event (frames carry its age), less o_old
        self.o_old = [0] * SLOTS  # whole minutes of age folded out of o_at (saturating)
        self.o_status = [0] * SLOTS  # best acknowledgement status so far
        self.o_since = [0] * SLOTS  # tick DELIVERED was reached (HELP wait)
        self.retries = [Retry() for _ in range(SLOTS)]
        self.adv_slot = -1  # slot whose frame is on the air
        self.adv_until = 0
        self.gave_up = 0
        self.evicted = 0  # messages that made room for a newer one (diagnostics, tests)

    # -- slots ---------------------------------------------------------------
    def put(self, i, seq, mtype, arg, now_ms, at):
        """Fill slot i (from free_slot) and start its retry schedule."""
        self.o_seq[i] = seq
        self.o_type[i] = mtype
        self.o_arg[i] = arg
        self.o_at[i] = at
        self.o_old[i] = 0
        self.o_status[i] = 0
        self.o_since[i] = 0
        r = self.retries[i]
        r.max_attempts = 0 if is_alarm(mtype) else self.cfg.routine_attempts
        r.start(now_ms, (self._seed * 31 + seq) & 0xFFFF)

    def _rank(self, i):
        """How little evicting slot i loses (module docstring); _KEEP: never evicted."""
        t = self.o_type[i]
        st = self.o_status[i]
        if not is_alarm(t):
            return 0
        if t == T_SOS or t == T_FALL_CONFIRMED:
            return 3 if st >= ACK_DELIVERED else _KEEP
        return 1 if st >= ACK_STORED else 2

    def victim(self, mtype):
        """The slot a new `mtype` message would take (free, or the one it would evict); -1: none."""
        best = -1
        best_rank = _allowance(mtype) + 1
        for i in range(SLOTS):
            if self.o_seq[i] == 0:
                return i
            r = self._rank(i)
            # oldest first among equals: numbers grow with time, even across power loss
            if r < best_rank or (best >= 0 and r == best_rank and self.o_seq[i] < self.o_seq[best]):
                best = i
                best_rank = r
        return best

    def free_slot(self, mtype):
        """A slot for a new `mtype` message, evicting one if need be; -1 if none may go."""
        i = self.victim(mtype)
        if i >= 0 and self.o_seq[i]:
            self.evicted += 1
            self.free(i, self.o_status[i])
        return i

    def free(self, i, status):
        seq = self.o_seq[i]
        self.retries[i].stop()
        self.o_seq[i] = 0
        if self.adv_slot == i:
            self.adv_slot = -1
        self.listener.on_freed(seq, self.o_type[i], status)

    def slot(self, seq):
        if seq:
            for i in range(SLOTS):
                if self.o_seq[i] == seq:
                    return i
        return -1

    # -- queries -------------------------------------------------------------
    def drop(self, seq):
        """Stop sending `seq` (superseded by a cancel or a test); no callback."""
        i = self.slot(seq)
        if i >= 0:
            self.free(i, -1)

    def pending(self, seq):
        return self.slot(seq) >= 0

    def status(self, seq):
        i = self.slot(seq)
        return self.o_status[i] if i >= 0 else -1

    def type_of(self, seq):
        """The type of the message pending under `seq`, 0 if none. Changes nothing: the Core
        verifies an acknowledgement's tag with it (the tag covers the type) before match()."""
        i = self.slot(seq)
        return self.o_type[i] if i >= 0 else 0

    def overdue(self, seq, now_ms):
        """No acknowledgement at all for longer than the retry schedule's notify time (25 s)."""
        i = self.slot(seq)
        return i >= 0 and self.o_status[i] == 0 and self.retries[i].overdue(now_ms)

    def busy(self):
        for i in range(SLOTS):
            if self.o_seq[i]:
                return True
        return False

    # -- acknowledgements ----------------------------------------------------
    def match(self, seq, status, now_ms):
        """The slot a verified acknowledgement raises; -1 if stale (replay, duplicate)."""
        i = self.slot(seq)
        if i >= 0 and i == self.adv_slot:
            self.adv_until = now_ms  # the hub has this frame: no need to stay on the air
        if i < 0 or status <= self.o_status[i]:
            return -1
        return i

    def raise_status(self, i, status, now_ms):
        self.o_status[i] = status
        if status >= ACK_DELIVERED and not self.o_since[i]:
            self.o_since[i] = now_ms | 1  # nonzero marks "set"

    def settle(self, i, seq):
        """Free slot i if it still holds `seq` (the listener may have dropped it) and is done."""
        if self.o_seq[i] == seq and self.o_status[i] >= target_status(self.o_type[i]):
            self.free(i, self.o_status[i])

    def age(self, i, now_ms):
        """Slot i's event age as (whole minutes, ms on top) for Codec.encode."""
        return self.o_old[i], ticks_diff(now_ms, self.o_at[i])

    def expire(self, now_ms):
        for i in range(SLOTS):  # ages over a day: whole minutes into o_old (module docstring)
            if self.o_seq[i]:
                d = ticks_diff(now_ms, self.o_at[i])
                if d >= _FOLD_MS:
                    m = d // 60000
                    self.o_at[i] = ticks_add(self.o_at[i], m * 60000)
                    m += self.o_old[i]
                    self.o_old[i] = m if m < _OLD_MAX_MIN else _OLD_MAX_MIN
        for i in range(SLOTS):  # routine messages that ran out of attempts (after the last window)
            if self.o_seq[i] and not self.retries[i].active and not (
                self.adv_slot == i and not ticks_reached(now_ms, self.adv_until)
            ):
                self.gave_up += 1
                self.free(i, 0)
            elif (self.o_seq[i] and self.o_since[i]
                  and ticks_diff(now_ms, self.o_since[i]) >= self.cfg.help_wait_min * 60000):
                self.free(i, self.o_status[i])  # the platform has it; HELP never came

    # -- what goes on the air --------------------------------------------------
    def held(self):
        """Routine frames are held back while an alarm has no acknowledgement at all."""
        for i in range(SLOTS):
            if self.o_seq[i] and is_alarm(self.o_type[i]) and self.o_status[i] == 0:
                return True
        return False

    def pick(self, now_ms):
        """The due slot to transmit: alarms first, then the oldest event.

        One frame per advertising window: a frame on the air keeps it until the hub
        acknowledged it (that ends the window) or it ran out; only an alarm preempts a
        routine frame. Two frames due together thus share one wake, one after the other.
        """
        held = self.held()
        best = -1
        for i in range(SLOTS):
            if not self.eligible(i, now_ms, held) or not self.retries[i].due(now_ms):
                continue
            a = is_alarm(self.o_type[i])
            if best < 0:
                best = i
                continue
            ab = is_alarm(self.o_type[best])
            if (a and not ab) or (a == ab and ticks_diff(self.o_at[best], self.o_at[i]) > 0):
                best = i
        return best

    def eligible(self, i, now_ms, held):
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

    def sent(self, i, now_ms):
        """Slot i's frame went on the air for one advertising window."""
        self.retries[i].sent(now_ms)
        self.adv_slot = i
        self.adv_until = ticks_add(now_ms, self.cfg.adv_window_ms)

    def in_window(self, now_ms):
        return self.adv_slot >= 0 and not ticks_reached(now_ms, self.adv_until)

    def busy_soon(self, now_ms):
        """A transmission is due within the linger time: keep the radio up."""
        for i in range(SLOTS):
            if self.o_seq[i] and self.retries[i].active and not (
                self.held() and not is_alarm(self.o_type[i])
            ) and ticks_diff(self.retries[i].next_at, now_ms) < self.cfg.hub_linger_ms:
                return True
        return False

    def next_ms(self, now_ms, d):
        """`d` cut to the next retry or end of a HELP wait (ms from now, may be < 0)."""
        held = self.held()  # a held-back frame is no deadline: the alarm's ack wakes us
        for i in range(SLOTS):
            if self.o_seq[i]:
                if self.eligible(i, now_ms, held):
                    d = min(d, ticks_diff(self.retries[i].next_at, now_ms))
                if self.o_since[i]:
                    d = min(d, self.cfg.help_wait_min * 60000 - ticks_diff(now_ms, self.o_since[i]))
        return d
