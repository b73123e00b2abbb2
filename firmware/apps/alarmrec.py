"""The alarm record: every alarm-class message still in the outbox, kept in NVS.

A power loss empties RAM and RTC memory; the record lets the device re-send, after
power-on, each alarm-class message (SOS, SOS_CANCEL, TEST, FALL_*) that was still
pending, with its own number (firmware/apps/core.py, recover_alarm). It is ONE NVS
blob, rewritten whole at each change: one key is all-or-nothing (the old or the new
value survives a power cut, firmware/hal/esp32.py), so a record never pairs one
message's number with another's type, and no message pushes another out of it.

    0  version (1)    1  entry count n
    2 + 8k: seq (4, big-endian), type (1), arg (3)   (the frame's own fields)

A FALL_CONFIRMED's arg is its distance back to the FALL_SUSPECTED, so a recovered one
still names the FALL_SUSPECTED it supersedes (a cancel of it names the FALL_CONFIRMED
itself). A later version may add fields per entry: it
changes byte 0 (this reader then ignores the record) and must stay within REC_MAX.

Firmware before this record kept only the latest message, in three i32 keys written
one after the other (al_type, al_arg, al_seq); read() falls back on them while no
record exists, so a device updated with an alarm pending still re-sends it.
"""

from shared.compat import const
from shared.frame import is_alarm

KEY = "alarms"
REC_MAX = const(64)  # bytes read back: 2 + 6 slots * 8 = 50 used, room for a version 2
_VERSION = const(1)
_HDR = const(2)  # version, count
_ENTRY = const(8)  # seq 4, type 1, arg 3
OLD_SEQ = "al_seq"
_OLD_TYPE = "al_type"
_OLD_ARG = "al_arg"


def pack(buf, ob):
    """Write the record of outbox `ob`'s alarm-class messages into `buf`; returns its length."""
    buf[0] = _VERSION
    n = 0
    for i in range(len(ob.o_seq)):
        t = ob.o_type[i]
        if ob.o_seq[i] and is_alarm(t):
            o = _HDR + _ENTRY * n
            seq = ob.o_seq[i]
            arg = ob.o_arg[i]
            buf[o] = (seq >> 24) & 0xFF
            buf[o + 1] = (seq >> 16) & 0xFF
            buf[o + 2] = (seq >> 8) & 0xFF
            buf[o + 3] = seq & 0xFF
            buf[o + 4] = t
            buf[o + 5] = (arg >> 16) & 0xFF
            buf[o + 6] = (arg >> 8) & 0xFF
            buf[o + 7] = arg & 0xFF
            n += 1
    buf[1] = n
    return _HDR + _ENTRY * n


def read(hal, buf):
    """([(seq, type, arg)...], from_old_keys) as recorded; an empty list if nothing is."""
    n = hal.nvs_get_blob(KEY, buf)
    out = []
    if n >= _HDR and buf[0] == _VERSION:
        for k in range(buf[1]):
            o = _HDR + _ENTRY * k
            if o + _ENTRY > n:
                break
            seq = (buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]
            out.append((seq, buf[o + 4], (buf[o + 5] << 16) | (buf[o + 6] << 8) | buf[o + 7]))
        return out, False
    if n:
        return out, False  # a version this firmware does not know: nothing it can use
    v = hal.nvs_get(OLD_SEQ, 0)
    if v:
        out.append((v + 0x100000000 if v < 0 else v, hal.nvs_get(_OLD_TYPE, 0),
                    hal.nvs_get(_OLD_ARG, 0) & 0xFFFFFF))
    return out, True


def forget_old(hal):
    """The old keys' alarm is in the record now: they must not bring it back again."""
    hal.nvs_set(OLD_SEQ, 0)
