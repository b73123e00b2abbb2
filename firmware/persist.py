"""Snapshots of state objects into RTC memory, across deep sleep.

Deep sleep resets the chip; only RTC memory (2 KB on ESP32) survives. Before
sleeping, the app snapshots its state objects (its own, the shared core's
Retry / Pir / SeqBlock ...) and rebuilds them at wake. The snapshot covers
every attribute that is an int, a bool or a list of ints, in sorted name order,
which is how the shared state machines keep their state (docs/shared-core.md);
a schema hash of the names, types and list lengths and a fingerprint of the
config file guard against restoring into different code or a different
config: a mismatch restores nothing (a fresh start, never a wrong one).

Layout: "CB" 1 | length 2 | schema 3 | config 3 | values | fletcher16 2.
bool = 1 byte, int = 5 bytes two's complement (sequence numbers reach 2**32).
Runs only around deep sleep, so it may allocate (sorted names, big ints).
"""

from shared.compat import const

_MAGIC0 = const(0x43)  # "C"
_MAGIC1 = const(0x42)  # "B"
_VERSION = const(1)
_HDR = const(9)
_INT_LEN = const(5)
_M40 = 0xFFFFFFFFFF  # not const(): a big int on MicroPython


def _fields(obj):
    """(name, kind, n) for each persisted attribute; kind 0 bool, 1 int, 2 int list."""
    out = []
    d = obj.__dict__
    for name in sorted(d):
        v = d[name]
        t = type(v)
        if t is bool:
            out.append((name, 0, 1))
        elif t is int:
            out.append((name, 1, 1))
        elif t is list and all(type(e) is int for e in v):
            out.append((name, 2, len(v)))
    return out


def _schema(specs):
    h = 5381
    for fields in specs:
        for name, kind, n in fields:
            for ch in name:
                h = ((h * 33) ^ ord(ch)) & 0xFFFFFF
            h = ((h * 33) ^ (kind * 1000 + n)) & 0xFFFFFF
        h = ((h * 33) ^ 0x7C) & 0xFFFFFF  # object separator
    return h


def _fletcher(buf, n):
    a = 0
    b = 0
    for i in range(n):
        a = (a + buf[i]) % 255
        b = (b + a) % 255
    return (b << 8) | a


def _put_int(buf, off, v):
    v &= _M40
    for k in range(_INT_LEN):
        buf[off + k] = (v >> (8 * (_INT_LEN - 1 - k))) & 0xFF
    return off + _INT_LEN


def _get_int(buf, off):
    v = 0
    for k in range(_INT_LEN):
        v = (v << 8) | buf[off + k]
    if v & 0x8000000000:
        v -= 0x10000000000
    return v


def size(objs):
    n = _HDR + 2
    for o in objs:
        for _name, kind, cnt in _fields(o):
            n += 1 if kind == 0 else _INT_LEN * cnt
    return n


def save(objs, buf, config_fp=0):
    """Write a snapshot of `objs` into `buf`; returns its length (ValueError if it does not fit)."""
    specs = [_fields(o) for o in objs]
    need = size(objs)
    if need > len(buf):
        raise ValueError("snapshot needs %d bytes, buffer has %d" % (need, len(buf)))
    buf[0] = _MAGIC0
    buf[1] = _MAGIC1
    buf[2] = _VERSION
    buf[3] = need >> 8
    buf[4] = need & 0xFF
    s = _schema(specs)
    buf[5] = (s >> 16) & 0xFF
    buf[6] = (s >> 8) & 0xFF
    buf[7] = s & 0xFF
    buf[8] = config_fp & 0xFF  # one byte of the fingerprint is plenty to catch a changed file
    off = _HDR
    for o, fields in zip(objs, specs):
        d = o.__dict__
        for name, kind, _n in fields:
            v = d[name]
            if kind == 0:
                buf[off] = 1 if v else 0
                off += 1
            elif kind == 1:
                off = _put_int(buf, off, v)
            else:
                for e in v:
                    off = _put_int(buf, off, e)
    f = _fletcher(buf, off)
    buf[off] = f >> 8
    buf[off + 1] = f & 0xFF
    return off + 2


def check(objs, buf, n, config_fp=0):
    """'' if `buf[:n]` is a snapshot that fits `objs`, else why not (for the log)."""
    if n < _HDR + 2 or buf[0] != _MAGIC0 or buf[1] != _MAGIC1:
        return "no snapshot"
    if buf[2] != _VERSION:
        return "snapshot version %d" % buf[2]
    if (buf[3] << 8) | buf[4] != n or n != size(objs):
        return "snapshot length differs"
    if _fletcher(buf, n - 2) != (buf[n - 2] << 8) | buf[n - 1]:
        return "snapshot checksum"
    s = _schema([_fields(o) for o in objs])
    if (buf[5] << 16) | (buf[6] << 8) | buf[7] != s:
        return "snapshot from other firmware"
    if buf[8] != config_fp & 0xFF:
        return "snapshot from another config"
    return ""


def load(objs, buf, n, config_fp=0):
    """Restore `objs` from `buf[:n]`; '' on success, else the reason (objects untouched)."""
    why = check(objs, buf, n, config_fp)
    if why:
        return why
    off = _HDR
    for o in objs:
        for name, kind, cnt in _fields(o):
            if kind == 0:
                setattr(o, name, buf[off] != 0)
                off += 1
            elif kind == 1:
                setattr(o, name, _get_int(buf, off))
                off += _INT_LEN
            else:
                lst = getattr(o, name)
                for k in range(cnt):
                    lst[k] = _get_int(buf, off)
                    off += _INT_LEN
    return ""
