"""The SOS gesture policy and what the elder sees and hears about an alarm.

Policy (docs/device-behaviour.md):
- The FIRST confirmed press with no active alarm sends SOS at once. Never
  delayed: life safety comes before telling gestures apart.
- While an alarm is active (still being sent, or less than sos_hold_min old),
  further presses send nothing new: they replay its status, so the elder can
  always ask "did it go through?".
- A long press (held >= 3 s) cancels the active alarm, but never the alarm its
  own press raised: someone holding the button in panic is not cancelling.
  SOS -> SOS_CANCEL, a confirmed fall -> FALL_CANCELLED (arg = distance back).
- A multi-press (>= 3 presses) whose first press raised the SOS turns it into a
  weekly test: TEST with arg = distance back to that SOS (protocol: TEST
  supersedes SOS); the SOS stops being sent.
- The alarm climbs sending -> received (STORED) -> help is being called
  (DELIVERED) -> help is on the way (HELP); each step has its own pattern, and
  25 s without any acknowledgement gives "not delivered yet" (repeated every
  30 s while the device is awake for a retry), while sending goes on.
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


class Sos:
    def __init__(self, app):
        self.app = app
        self.alarm_seq = 0  # the alarm on display: an SOS or a FALL_CONFIRMED
        self.alarm_type = 0
        self.alarm_at = 0
        self.alarm_status = 0
        self.state = _NONE
        self.alarm_press = 0  # the press that raised it (0: not a press)
        self.fall_ref = 0  # FALL_SUSPECTED seq a fall cancel refers to
        self.press_id = 0
        self.seq_press = 0  # the press that opened the current press sequence
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
        elif self.app.core.outbox.overdue(self.alarm_seq, now_ms):
            self._show(P_NOT_DELIVERED, now_ms)
        else:
            self._show(P_SENDING, now_ms, _SENDING_SHOW_MS)

    def _raise(self, mtype, now_ms, press, ref=0, at=None):
        core = self.app.core
        seq = core.send(mtype, 0, now_ms, ref, at)
        self.alarm_seq = seq
        self.alarm_type = mtype
        self.alarm_at = now_ms
        self.alarm_status = 0
        self.alarm_press = press
        self.state = _ACTIVE
        self.nd_at = ticks_add(now_ms, _SENDING_SHOW_MS)
        self._show(P_SENDING, now_ms, _SENDING_SHOW_MS)
        return seq

    # -- gestures --------------------------------------------------------------
    def on_press(self, now_ms, first_of_sequence, at=None):
        self.press_id += 1
        if first_of_sequence:
            self.seq_press = self.press_id
        self._expire(now_ms)  # a press that wakes the device may come after the hold time
        if self.state == _ACTIVE:
            self._show_status(now_ms)  # "did it go through?"
            return 0
        self.alarms += 1
        return self._raise(T_SOS, now_ms, self.press_id, 0, at)

    def on_long(self, now_ms):
        if self.state != _ACTIVE or self.alarm_press == self.press_id:
            return 0  # nothing to cancel, or the panic hold of the press that raised it
        return self.cancel(now_ms)

    def cancel(self, now_ms):
        core = self.app.core
        if self.alarm_type == T_SOS:
            seq = core.send(T_SOS_CANCEL, 0, now_ms, self.alarm_seq)
        else:
            seq = core.send(T_FALL_CANCELLED, 0, now_ms, self.fall_ref)
        core.outbox.drop(self.alarm_seq)  # a late SOS after its cancel would confuse everyone
        self.cancel_seq = seq
        self.cancel_shown = False
        self.state = _ENDED
        self.nd_at = ticks_add(now_ms, _SENDING_SHOW_MS)
        self._show(P_SENDING, now_ms, _SENDING_SHOW_MS)
        return seq

    def on_multi(self, now_ms):
        if self.state != _ACTIVE or self.alarm_type != T_SOS or self.alarm_press != self.seq_press:
            return 0
        core = self.app.core
        seq = core.send(T_TEST, 0, now_ms, self.alarm_seq)
        core.outbox.drop(self.alarm_seq)
        self.test_seq = seq
        self.state = _ENDED
        self.nd_at = ticks_add(now_ms, _SENDING_SHOW_MS)
        self._show(P_SENDING, now_ms, _SENDING_SHOW_MS)
        return seq

    def adopt(self, seq, mtype, now_ms):
        """A message recovered from NVS after a power loss: track and show it again."""
        self.nd_at = ticks_add(now_ms, _SENDING_SHOW_MS)
        if mtype == T_SOS or mtype == T_FALL_CONFIRMED:
            self.alarm_seq = seq
            self.alarm_type = mtype
            self.alarm_at = now_ms
            self.alarm_status = 0
            self.alarm_press = 0
            self.state = _ACTIVE
            self._show(P_SENDING, now_ms, _SENDING_SHOW_MS)
        elif mtype == T_SOS_CANCEL or mtype == T_FALL_CANCELLED:
            self.cancel_seq = seq
            self.cancel_shown = False
        elif mtype == T_TEST:
            self.test_seq = seq

    def raise_fall(self, now_ms, suspected_seq):
        """The cancel window ran out: FALL_CONFIRMED, shown and cancellable like an SOS."""
        self.fall_ref = suspected_seq
        return self._raise(T_FALL_CONFIRMED, now_ms, 0, suspected_seq)

    def track_cancel(self, seq, now_ms):
        """A cancel sent by the app itself (fall window): show its progress."""
        self.cancel_seq = seq
        self.cancel_shown = False
        self.nd_at = ticks_add(now_ms, _SENDING_SHOW_MS)

    # -- acknowledgements and timers ----------------------------------------------
    def on_ack(self, seq, mtype, status, now_ms):
        if seq == self.alarm_seq and self.state == _ACTIVE:
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
        if (self.state == _ACTIVE and not self.app.core.outbox.pending(self.alarm_seq)
                and ticks_diff(now_ms, self.alarm_at) >= self.app.cfg.sos_hold_min * 60000):
            # Decided while ticks_diff is exact: the device wakes at least daily.
            self.state = _ENDED

    def step(self, now_ms):
        self._expire(now_ms)
        if self.state == _ACTIVE and self._not_delivered(self.alarm_seq, now_ms):
            return
        if self._not_delivered(self.cancel_seq, now_ms):
            return
        self._not_delivered(self.test_seq, now_ms)
