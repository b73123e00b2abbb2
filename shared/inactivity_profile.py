# The learned stillness profile behind shared/inactivity.py: a fixed-size ring
# of `days` days x 48 half-hour bins, each slot the longest stillness (in whole
# minutes, rounded up) that was seen by the end of that bin on that day, or
# NO_DATA when nothing is known (before install, while away, hub off, or a
# still period that is still going on).
#
# Layout: one pre-sized bytearray, slot (day d, bin b) at byte (d * 48 + b) * 2,
# uint16 little-endian. 14 days take 1344 bytes, 28 days 2688 bytes.
# Also the byte helpers (uint32 LE, Adler-32) of Inactivity.to_bytes().
# Pure integer maths, no allocation after __init__ (see docs/shared-core.md).
from shared.compat import const

BINS = const(48)  # 48 x 30 min per day, the binning of Cuddihy et al. 2007
BIN_MS = const(1_800_000)  # 30 min: 86_400_000 / BINS
DAY_MS = const(86_400_000)  # one day of local time of day, in ms
NO_DATA = const(0xFFFF)  # slot value meaning "nothing known"
MAX_MIN = const(8948)  # longest storable stillness: ceil((2**29 - 1) / 60_000),
# the saturation of Inactivity.still_ms; well below NO_DATA
_BIN_BYTES = const(96)  # BINS * 2 bytes per day


class Profile:
    """Ring of per-day, per-bin longest stillness (minutes)."""

    def __init__(self, days):
        self.days = days
        self.hist = bytearray(b"\xff" * (days * _BIN_BYTES))
        self.day = 0  # ring index of "today"
        self.known = 0  # set by order_stat(): days with data in the window

    def roll(self, n):
        """Move `n` days forward; each new day starts without data."""
        n = min(n, self.days)
        h = self.hist
        while n > 0:
            d = self.day + 1
            if d >= self.days:
                d = 0
            self.day = d
            i = d * _BIN_BYTES
            end = i + _BIN_BYTES
            while i < end:
                h[i] = 0xFF
                i += 1
            n -= 1

    def commit(self, still_ms, tod_ms, cap_ms):
        """Learn a still period that ended now (at `tod_ms`) after `still_ms`.

        Walking back bin by bin from now, each bin the period overlapped gets
        max(stored, elapsed stillness at the end of its overlap). Only the part
        of the period before `cap_ms` of stillness is learned (the value is
        capped there and bins entirely after it are skipped): an alarmed
        period is learned as if it had ended at the alarm. Returns True when
        a slot changed (so the caller refreshes its threshold).
        """
        h = self.hist
        b = tod_ms // BIN_MS
        into = tod_ms - b * BIN_MS  # part of bin b before "now"
        d = self.day
        e = still_ms  # elapsed stillness at the end of the overlap with bin b
        n = self.days * BINS  # never walk round the ring onto newer slots
        changed = False
        while n > 0:
            s = e - into  # elapsed stillness at the start of that overlap
            if s < cap_ms:
                m = min((min(e, cap_ms) + 59_999) // 60_000, MAX_MIN)
                i = (d * BINS + b) * 2
                old = h[i] | (h[i + 1] << 8)
                if old == NO_DATA or m > old:
                    h[i] = m & 0xFF
                    h[i + 1] = m >> 8
                    changed = True
            if s <= 0:
                break
            e = s
            into = BIN_MS
            b -= 1
            if b < 0:
                b = BINS - 1
                d -= 1
                if d < 0:
                    d = self.days - 1
            n -= 1
        return changed

    def order_stat(self, b, nb, rank):
        """The `rank`-th largest (1..3) per-day stillness around bin `b`.

        For each day of the ring, the day's value is the largest stillness
        stored in bins b - nb .. b + nb (wrapping round the day); the result
        is the rank-th largest of those day values in minutes, or -1 when
        fewer days are known. Sets `known` to the number of days with data.
        """
        h = self.hist
        t1 = -1
        t2 = -1
        t3 = -1
        known = 0
        d = 0
        while d < self.days:
            base = d * _BIN_BYTES
            m = -1
            j = b - nb
            while j <= b + nb:
                bb = j % BINS
                i = base + bb * 2
                v = h[i] | (h[i + 1] << 8)
                if v != NO_DATA and v > m:
                    m = v
                j += 1
            if m >= 0:
                known += 1
                if m > t1:
                    t3 = t2
                    t2 = t1
                    t1 = m
                elif m > t2:
                    t3 = t2
                    t2 = m
                elif m > t3:
                    t3 = m
            d += 1
        self.known = known
        if rank == 1:
            return t1
        if rank == 2:
            return t2
        return t3

    def valid(self):
        """True when every slot holds NO_DATA or a storable stillness."""
        h = self.hist
        i = 0
        while i < len(h):
            v = h[i] | (h[i + 1] << 8)
            if v != NO_DATA and v > MAX_MIN:
                return False
            i += 2
        return True


# -- byte helpers for Inactivity.to_bytes() / from_bytes() ------------------------

_ADLER = const(65_521)  # Adler-32 modulus (RFC 1950): matches zlib.adler32


def put32(buf, i, v):
    """Store v as uint32 little-endian at buf[i:i + 4]."""
    buf[i] = v & 0xFF
    buf[i + 1] = (v >> 8) & 0xFF
    buf[i + 2] = (v >> 16) & 0xFF
    buf[i + 3] = (v >> 24) & 0xFF


def get32(buf, i):
    return buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24)


def adler(buf, n):
    """Adler-32 of buf[:n] as its two 16-bit halves (a, b), small ints only."""
    a = 1
    b = 0
    i = 0
    while i < n:
        a = (a + buf[i]) % _ADLER
        b = (b + a) % _ADLER
        i += 1
    return a, b
