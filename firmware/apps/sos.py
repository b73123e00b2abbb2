"""The SOS gesture policy and what the elder sees and hears about an alarm.

Policy (docs/device-behaviour.md):
- The FIRST confirmed press with no active alarm sends SOS at once. Never
  delayed: life safety comes before telling gestures apart.
- While an alarm is active (still being sent, or less than sos_hold_min old),
  further presses send nothing new: they replay its status, so the elder can
  always ask "did it go through?".
- A long press (held >= 3 s) cancels the active alarm, but never the alarm its
  own press raised: someone holding the button in panic is not cancelling.
  SOS -> SOS_CANCEL, a confirmed fall -> FALL_CANCELLED (arg = distance back to
  the FALL_CONFIRMED: it superseded its FALL_SUSPECTED, so it is the alarm the hub
  holds active).
- EXACTLY three presses (shared.button's EV_MULTI, recognised only once the
  gap after the third has passed with no fourth) whose first press raised the
  SOS turn it into the weekly test: TEST with arg = distance back to that SOS
  (protocol: TEST supersedes SOS); the SOS stops being sent. Four or more
  presses (panic) stay an SOS, and so does a sequence that may have lost a
  press while the device booted (see on_multi).
- The alarm climbs sending -> received (STORED) -> help is being called
  (DELIVERED) -> help is on the way (HELP); each step has its own pattern, and
  25 s without any acknowledgement gives "not delivered yet" (repeated every
  30 s while the device is awake for a retry), while sending goes on.
- An alarm the outbox cannot take (six alarms in flight) stays active and shows
  "not delivered yet", never SENDING; it is queued once a slot frees. A cancel
  or test takes the slot of the alarm it supersedes; if none can be had, the
  alarm stands (never dropped for want of its cancel).
- A fall confirmed while an SOS is active (the bracelet) leaves both alarms at the hub:
  the FALL_CONFIRMED is shown, the SOS is kept (`also_seq`) until both are over; a press
  shows the status, a hold cancels both, and help on the way for either is shown.
"""

from firmware.feedback import (
    P_CALLING,
    P_CANCELLED,
    P_HELP,
    P_NOT_DELIVERED,
    P_RECEIVED,
    P_SENDING,
    P_TEST_OK,
)
from firmware.hal import IN_BUTTON, bit
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
)
from shared.ticks import ticks_add, ticks_diff, ticks_reached

_NONE = const(0)
_ACTIVE = const(1)
_ENDED = const(2)  # cancelled, superseded by a test, or past the hold time

_SENDING_SHOW_MS = const(25000)  # the sending pattern loops until "not delivered yet" may take over
_ND_REPEAT_MS = const(30000)
_DAY_MS = const(86400000)  # an alarm queued this late restarts its age (ticks stay exact)
_PACE_NONE = const(0x1FFFFFFF)  # ticks.MAX_DIFF: "no second press yet"


class Sos:
    def __init__(self, app):
        self.app = app
        self.alarm_seq = 0  # the alarm on display: an SOS or a FALL_CONFIRMED
        self.also_seq = 0  # an SOS still active when a fall was confirmed over it
        self.alarm_type = 0
        self.alarm_at = 0
        self.hold_done = False  # sos_hold_min has passed since alarm_at (latched while exact)
        self.alarm_status = 0
        self.state = _NONE
        self.alarm_press = 0  # the press that raised it (0: not a press)
        self.fall_ref = 0  # the FALL_SUSPECTED a FALL_CONFIRMED supersedes (its arg when queued)
        self.press_id = 0
        self.seq_press = 0  # the press that opened the current press sequence
        self.seq_pace = 0  # shortest time between press starts in that sequence (ms)
        self.press_at = 0  # tick the last press started
        self.boot_press = 0  # a press replayed after boot: the boot hid the button...
        self.held_press = 0  # a press held through the restart that recovered the alarm
        self.blind_ms = 0  # ...this long after it started (set by the app)
        self.cancel_seq = 0
        self.cancel_shown = False
        self.test_seq = 0
        self.nd_at = 0  # when "not delivered yet" may play again
        self.alarms = 0  # SOS raised (tests, diagnostics)

    def active(self, now_ms):
        return self.state == _ACTIVE

    def _show(self, pattern, now_ms, repeat_ms=0):
        self.app.fb.play(pattern, now_ms, repeat_ms)

    def _show_status(self, now_ms):
        s = self.alarm_status
        if s >= ACK_HELP:
            self._show(P_HELP, now_ms)
        elif s == ACK_DELIVERED:
            self._show(P_CALLING, now_ms)
        elif s == ACK_STORED:
            self._show(P_RECEIVED, now_ms)
        elif not self.alarm_seq or self.app.core.outbox.overdue(self.alarm_seq, now_ms):
            self._show(P_NOT_DELIVERED, now_ms)  # not queued yet, or no acknowledgement in 25 s
        else:
            self._show(P_SENDING, now_ms, _SENDING_SHOW_MS)

    def _raise(self, mtype, now_ms, press, ref=0, at=None):
        core = self.app.core
        seq = core.send(mtype, 0, now_ms, ref, at)
        self.alarm_seq = seq
        self.also_seq = 0
        self.alarm_type = mtype
        self.alarm_at = now_ms
        self.alarm_status = 0
        self.alarm_press = press
        self.state = _ACTIVE
        self.hold_done = False
        self._sending(seq, now_ms)  # seq 0: kept active, queued by step() once a slot may go
        return seq

    def _sending(self, seq, now_ms):
        """SENDING for a message just queued; "not delivered yet" at once if it could not be."""
        if seq:
            self.nd_at = ticks_add(now_ms, _SENDING_SHOW_MS)
            self._show(P_SENDING, now_ms, _SENDING_SHOW_MS)
        else:
            self.nd_at = ticks_add(now_ms, _ND_REPEAT_MS)
            self._show(P_NOT_DELIVERED, now_ms)

    # -- gestures --------------------------------------------------------------
    def on_press(self, now_ms, first_of_sequence, at=None, replayed=0):
        """`replayed`: the wake press, replayed after the boot (the button unseen until now)."""
        self.press_id += 1
        t = now_ms if at is None else at
        if replayed:
            self.boot_press = self.press_id
            self.blind_ms = ticks_diff(now_ms, t)
        if first_of_sequence:
            self.seq_press = self.press_id
            self.seq_pace = _PACE_NONE
        else:
            d = ticks_diff(t, self.press_at)
            if d < self.seq_pace:
                self.seq_pace = d
        self.press_at = t
        self._expire(now_ms)  # a press that wakes the device may come after the hold time
        if self.state == _ACTIVE:
            self._show_status(now_ms)  # "did it go through?"
            return 0
        self.alarms += 1
        return self._raise(T_SOS, now_ms, self.press_id, 0, at)

    def on_long(self, now_ms):
        if self.state != _ACTIVE or self.alarm_press == self.press_id or \
                self.held_press == self.press_id:
            return 0  # nothing to cancel, or the panic hold of the press that raised it
        return self.cancel(now_ms)

    def cancel(self, now_ms):
        core = self.app.core
        if self.alarm_type == T_SOS:
            mtype = T_SOS_CANCEL
            ref = self.alarm_seq
        else:  # to the FALL_CONFIRMED, which superseded its FALL_SUSPECTED at the hub; not
            # queued yet (a full outbox): to the FALL_SUSPECTED, the alarm the hub still holds
            mtype = T_FALL_CANCELLED
            ref = self.alarm_seq if self.alarm_seq else self.fall_ref
        seq = 0
        if ref:  # (0: the alarm never left the device, the hub has nothing to cancel)
            if not self._make_room(mtype, now_ms):
                return 0
            seq = core.send(mtype, 0, now_ms, ref)  # in the slot the alarm just left
        also = self.also_seq  # the SOS a fall was confirmed over: "I'm fine" means both
        if also and self._make_room(T_SOS_CANCEL, now_ms, also):
            core.send(T_SOS_CANCEL, 0, now_ms, also)
        self.also_seq = 0
        self.cancel_seq = seq
        self.cancel_shown = False
        self.state = _ENDED
        if seq:
            self._sending(seq, now_ms)
        else:
            self._show(P_CANCELLED, now_ms)
        return seq

    def on_multi(self, now_ms):
        if self.state != _ACTIVE or self.alarm_type != T_SOS or self.alarm_press != self.seq_press:
            return 0
        if self.seq_press == self.boot_press and self.seq_pace <= self.blind_ms:
            # Presses as fast as the boot was long: one may have gone unseen during the boot
            # (four read as three). Ambiguous, so the SOS stands.
            return 0
        if not self._make_room(T_TEST, now_ms):
            return 0
        seq = self.app.core.send(T_TEST, 0, now_ms, self.alarm_seq)
        self.test_seq = seq
        self.state = _ENDED
        self._sending(seq, now_ms)
        return seq

    def _make_room(self, mtype, now_ms, alarm=-1):
        """Stop sending the alarm (`alarm`, else the one on display) that a cancel or test of
        `mtype` supersedes, which frees a slot for it; False (the alarm goes on, "not
        delivered yet") if no slot could take it: an alarm is never dropped for want of the
        message that supersedes it."""
        seq = self.alarm_seq if alarm < 0 else alarm
        ob = self.app.core.outbox
        if not ob.pending(seq) and ob.victim(mtype) < 0:
            self._sending(0, now_ms)  # six alarms in flight: the elder may try again
            return False
        ob.drop(seq)  # a late SOS after its cancel would confuse everyone
        return True

    def adopt(self, seq, mtype, now_ms):
        """A message recovered from NVS after a power loss: track and show it again."""
        self.nd_at = ticks_add(now_ms, _SENDING_SHOW_MS)
        if mtype == T_SOS or mtype == T_FALL_CONFIRMED:
            # A cancel names this alarm itself: a recovered FALL_CONFIRMED carries its
            # FALL_SUSPECTED's distance back in its own arg, and supersedes it at the hub.
            self.alarm_seq = seq
            self.alarm_type = mtype
            self.alarm_at = now_ms
            self.alarm_status = 0
            self.alarm_press = 0
            # The button held through the restart (a reset in a panic hold): the next press,
            # that one, may be the panic hold of the press that raised it: never a cancel.
            hal = self.app.hal
            if hal.wake_inputs & bit(IN_BUTTON) or hal.input(IN_BUTTON):
                self.held_press = self.press_id + 1
            self.state = _ACTIVE
            self._show(P_SENDING, now_ms, _SENDING_SHOW_MS)
        elif mtype == T_SOS_CANCEL or mtype == T_FALL_CANCELLED:
            self.cancel_seq = seq
            self.cancel_shown = False
        elif mtype == T_TEST:
            self.test_seq = seq

    def raise_fall(self, now_ms, suspected_seq):
        """The cancel window ran out: FALL_CONFIRMED, shown and cancellable like an SOS."""
        also = self.alarm_seq if self.state == _ACTIVE and self.alarm_type == T_SOS else 0
        self.fall_ref = suspected_seq
        seq = self._raise(T_FALL_CONFIRMED, now_ms, 0, suspected_seq)
        # The SOS stays an alarm at the hub: cancelled with the fall, waited for before a
        # press may raise another. (One still waiting for a slot (0) gives way: the
        # FALL_CONFIRMED calls for help in its place.)
        self.also_seq = also
        return seq

    def cancel_fall(self, suspected_seq, now_ms):
        """"I'm fine" in the fall window: FALL_CANCELLED to the FALL_SUSPECTED, shown as it goes."""
        if not suspected_seq:  # the FALL_SUSPECTED never left the device: nothing to cancel
            self._show(P_CANCELLED, now_ms)
            return 0
        seq = self.app.core.send(T_FALL_CANCELLED, 0, now_ms, suspected_seq)
        self.track_cancel(seq, now_ms)
        return seq

    def track_cancel(self, seq, now_ms):
        """A cancel sent by the app itself (fall window): show its progress as an SOS cancel's,
        SENDING until the hub has it (seq 0: not queued, "not delivered yet": the
        FALL_SUSPECTED stands, the safe side)."""
        self.cancel_seq = seq
        self.cancel_shown = False
        self._sending(seq, now_ms)

    # -- acknowledgements and timers ----------------------------------------------
    def on_ack(self, seq, mtype, status, now_ms):
        if seq == self.alarm_seq and self.state == _ACTIVE:
            self.alarm_status = status
            self._show_status(now_ms)
        elif seq == self.also_seq and self.state == _ACTIVE:
            if status > self.alarm_status:  # help on the way for the SOS is help for the fall
                self.alarm_status = status
            self._show_status(now_ms)
        elif seq == self.cancel_seq and not self.cancel_shown:
            self.cancel_shown = True  # the hub has the cancel: say so at the first acknowledgement
            self._show(P_CANCELLED, now_ms)
        elif seq == self.test_seq:
            self._show(P_TEST_OK if status >= ACK_DELIVERED else P_RECEIVED, now_ms)

    def _not_delivered(self, seq, now_ms):
        if seq and self.app.core.outbox.overdue(seq, now_ms) and ticks_reached(now_ms, self.nd_at):
            self._show(P_NOT_DELIVERED, now_ms)
            self.nd_at = ticks_add(now_ms, _ND_REPEAT_MS)
            return True
        return False

    def _expire(self, now_ms):
        if self.state != _ACTIVE or not self.alarm_seq:
            return  # (an alarm still waiting for a slot never expires: it must go out)
        if not self.hold_done and \
                ticks_diff(now_ms, self.alarm_at) >= self.app.cfg.sos_hold_min * 60000:
            # Latched while the tick distance is exact: the app steps at least every retry
            # (<= 66 s) while the alarm is sent and every heartbeat (<= 1 day) after; the
            # alarm itself may be sent for longer than the 2**29 ms (6.2 days) ticks span.
            self.hold_done = True
        ob = self.app.core.outbox
        if self.hold_done and not ob.pending(self.alarm_seq) and not ob.pending(self.also_seq):
            self.state = _ENDED

    def _requeue(self, now_ms):
        """The alarm the full outbox could not take: queued as soon as a slot may go, and
        "not delivered yet" every 30 s meanwhile. True if it showed something."""
        core = self.app.core
        t = self.alarm_type
        if core.outbox.victim(t) >= 0:
            d = ticks_diff(now_ms, self.alarm_at)  # the frame's age covers the wait
            seq = core.send(t, 0, now_ms, self.fall_ref if t == T_FALL_CONFIRMED else 0,
                            self.alarm_at if 0 <= d < _DAY_MS else None)
            if seq:
                self.alarm_seq = seq
                self._sending(seq, now_ms)
                return True
        if ticks_reached(now_ms, self.nd_at):
            self._sending(0, now_ms)
            return True
        return False

    def step(self, now_ms):
        self._expire(now_ms)
        if self.state == _ACTIVE and not self.alarm_seq and self._requeue(now_ms):
            return
        if self.state == _ACTIVE and self._not_delivered(self.alarm_seq, now_ms):
            return
        if self._not_delivered(self.cancel_seq, now_ms):
            return
        self._not_delivered(self.test_seq, now_ms)
