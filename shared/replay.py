# The receiver's replay window for one device's frame sequence numbers.
#
# A device numbers its frames 1, 2, 3, ... and never reuses a number, even
# across power loss (docs/protocol.md, "Sequence numbers"). Retransmissions of
# one message keep its number, so the hub must tell three cases apart:
#   R_NEW        never accepted: store it, then call accept()
#   R_DUPLICATE  accepted before: a retry whose acknowledgement was lost;
#                acknowledge again, store nothing
#   R_TOO_OLD    below the window: cannot tell a late retry from a replay;
#                refused, and the hub raises it loudly (never silently)
# The window is wide (2048 frames) so that an alarm retried through a long hub
# outage, while its device kept sending routine frames, is still inside it.
from shared.compat import const

R_NEW = const(1)
R_DUPLICATE = const(2)
R_TOO_OLD = const(3)

_VERSION = const(1)


class ReplayWindow:
    def __init__(self, size=2048):
        if size < 8 or size % 8 or size > 65536:
            raise ValueError("size must be a multiple of 8 in 8..65536")
        self.size = size
        self.top = 0  # highest sequence number accepted; 0 = none yet (numbers start at 1)
        self._bits = bytearray(size // 8)

    def _has(self, seq):
        i = seq % self.size
        return (self._bits[i >> 3] >> (i & 7)) & 1 == 1

    def _set(self, seq, on):
        i = seq % self.size
        if on:
            self._bits[i >> 3] |= 1 << (i & 7)
        else:
            self._bits[i >> 3] &= ~(1 << (i & 7)) & 0xFF

    def check(self, seq):
        """Classify `seq` without changing anything."""
        if seq > self.top:
            return R_NEW
        if seq <= self.top - self.size or seq <= 0:
            return R_TOO_OLD
        return R_DUPLICATE if self._has(seq) else R_NEW

    def accept(self, seq):
        """Record `seq` as accepted (call only after check() said R_NEW)."""
        if seq > self.top:
            gap = seq - self.top
            if gap >= self.size:
                for i in range(len(self._bits)):
                    self._bits[i] = 0
            else:
                s = self.top + 1
                while s < seq:
                    self._set(s, False)
                    s += 1
            self.top = seq
        self._set(seq, True)

    def to_bytes(self):
        head = bytearray(7)
        head[0] = _VERSION
        head[1] = (self.size >> 8) & 0xFF if self.size < 65536 else 0
        head[2] = self.size & 0xFF
        for i in range(4):
            head[3 + i] = (self.top >> (24 - 8 * i)) & 0xFF
        return bytes(head) + bytes(self._bits)

    @classmethod
    def from_bytes(cls, data):
        if len(data) < 7 or data[0] != _VERSION:
            raise ValueError("replay window: unknown version or truncated")
        size = ((data[1] << 8) | data[2]) or 65536
        if len(data) != 7 + size // 8:
            raise ValueError("replay window: length does not match its size")
        w = cls(size)
        w.top = (data[3] << 24) | (data[4] << 16) | (data[5] << 8) | data[6]
        for i in range(size // 8):
            w._bits[i] = data[7 + i]
        return w
