"""Frame sequence numbers that never repeat, with few flash writes.

Sans-IO. The device keeps ONE number in non-volatile storage (NVS): the
committed *limit*. Every number below it may already have been used; no number
at or above it has been. Numbers are handed out from ``next`` upwards; before
``next`` reaches ``limit`` the caller must commit a new limit (``next + block``)
to NVS, and only then take the number (docs/protocol.md, "Sequence numbers").

After a power loss the device restarts at the committed limit: the unused rest
of the last block is skipped, nothing is repeated, whatever instant the power
went (a commit is atomic in NVS: either the old or the new limit survives, and
a number is only used once the new limit is durable).

Across deep sleep and soft resets RTC memory survives, so the caller can
``resume(next)`` without wasting the block; a value that does not fit the
committed limit (stale or corrupted RTC memory) is refused and numbering
restarts at the limit -- skipping is always the safe direction.

Use::

    sb = SeqBlock(committed=nvs_limit_or_0, block=32)
    sb.resume(rtc_next)               # optional, after deep sleep
    if sb.needs_commit():
        nvs_commit(sb.reservation())  # durable BEFORE the number is used
        sb.committed(sb.reservation())
    seq = sb.take()

Numbers start at 1 (0 means "none" in the protocol's distance fields) and stop
at ``SEQ_MAX``: a device that gets there must be re-keyed (protocol).
"""

from shared.compat import const

SEQ_MAX = const(0xFFFFFFFF)  # 32-bit frame field
BLOCK_DEFAULT = const(32)  # one NVS write per 32 frames: a 5-min PIR commits ~3 times a day


class SeqBlock:
    def __init__(self, committed=0, block=BLOCK_DEFAULT):
        if type(block) is not int or not 1 <= block <= 65536:
            raise ValueError("block must be an int in [1, 65536]")
        if type(committed) is not int or not 0 <= committed <= SEQ_MAX + 1:
            raise ValueError("committed must be an int in [0, 2**32]")
        self.block = block
        # 0 (nothing stored yet) behaves as 1: numbers start at 1.
        self.limit = committed if committed > 1 else 1
        self.next = self.limit
        self.commits = 0  # how many reservations were committed (diagnostics, tests)

    def resume(self, next_seq):
        """Continue from `next_seq` kept in RTC memory; False (unchanged) if it cannot be right."""
        if type(next_seq) is not int:
            return False
        # Right after a commit next == limit - block; it only grows up to limit.
        if self.limit - self.block <= next_seq <= self.limit and next_seq >= 1:
            self.next = next_seq
            return True
        return False

    def needs_commit(self):
        """True when a new limit must be durable before take() may be called."""
        return self.next >= self.limit

    def reservation(self):
        """The limit to commit: covers the next `block` numbers (capped at SEQ_MAX + 1)."""
        if self.next > SEQ_MAX:
            raise ValueError("sequence numbers exhausted: re-key and renumber the device")
        r = self.next + self.block
        return r if r <= SEQ_MAX + 1 else SEQ_MAX + 1

    def committed(self, limit):
        """`limit` is now durable in NVS."""
        if limit < self.limit:
            raise ValueError("a committed limit never goes down")
        self.limit = limit
        self.commits += 1

    def take(self):
        """The next number; raises ValueError unless it is covered by the committed limit."""
        n = self.next
        if n >= self.limit:
            raise ValueError("commit a new limit before taking a number")
        self.next = n + 1
        return n
