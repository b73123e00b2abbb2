"""Who gets the acknowledgement connections when many addresses want one: each device's own
address first, and a bounded number of others.

A frame authenticates its sender's key, not the address it came from: anyone can relay a
device's adverts live from ever new random addresses, and the hub acknowledges a fresh copy
to the address it came from (docs/protocol.md "Replay protection"). An ack connection to an
address that never answers holds a connection slot for the whole connect timeout, so without
limits such a relay keeps the device's own STORED, DELIVERED and HELP waiting behind it (the
elder sees "not delivered yet") and makes one ack worker per address, without end. So:

- **A device's current address** is the address of the last acknowledgement the pipeline
  marked as going to the device's own address (``own=True``): the address the device's last
  *new* frame came from (pipeline.on_frame), kept across hub restarts. Only the pipeline can
  tell: a relay's or a replayer's copy carries the same genuine bytes, and after a restart a
  recording replayed first would otherwise look like the device. Every other ack is an
  *other* address's. Which device an address is, is what its adverts claim
  (DeviceBook.claim): a relay must carry the device's genuine frames to be acknowledged at
  all, and an address that claimed two devices is nobody's, so forged adverts cannot make a
  relay some device's current address.
- **Admission.** Besides its current address, at most ``OTHERS_PER_DEVICE`` addresses of one
  device, and ``OTHERS_TOTAL`` non-current addresses in all, have acks queued. An ack to one
  more is refused at once (False to its caller, as a refused write); those already queued are
  kept. Dropping them for the newcomer would free nothing soon (a connect in flight is not
  cut short per advert: ble-hub notes, failure mode 6) and would let a relay rotating its
  address churn a new worker per advert, while refusing costs nothing; and the refused ack
  never goes to the device's own address, which is always admitted: the device keeps
  retransmitting and its own address is answered. Refusals are logged once a minute per
  device, with a count.
- **Slots.** One connection slot (of two or more) is kept for acks to current addresses, and
  those are served first when a slot frees: other addresses' connects never keep a device's
  own ack waiting, only other devices' own acks can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable

log = logging.getLogger("carebeacon.radio")

OTHERS_PER_DEVICE = 2  # relayed copies of one device's frames: two connections' worth
OTHERS_TOTAL = 8  # all non-current addresses together (also those claiming no one device)
DEVICES_KEPT = 256  # devices whose current address is remembered (verified frames only)
REFUSED_LOG_S = 60.0  # at most one "refused" warning per device this often
_CONN_ENDS_KEPT = 64  # addresses whose last ack connection's end is kept (echo filter)
# bleak's property-change detections of a connection (Connected, ServicesResolved, and their
# clearing at the disconnect) come within a moment of it: a margin, not measured on a Pi
ECHO_S = 2.0

# The device an address claims (DeviceBook.claim): a device id, or None for no one device (not
# heard, or claimed two).
Claim = int | None


class Addresses:
    """Each device's current address (``owned``, ``is_current``) and who may queue
    (``admit``)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._current: dict[int, str] = {}  # device -> its own address, most recent last
        self._refused: dict[Claim, tuple[int, float]] = {}  # unlogged count, last logged

    def owned(self, address: str, claim: Claim) -> None:
        """The pipeline acknowledges to ``address`` as its device's own (``own=True``)."""
        if claim is None:
            return
        self._current.pop(claim, None)
        self._current[claim] = address
        if len(self._current) > DEVICES_KEPT:
            del self._current[next(iter(self._current))]

    def is_current(self, address: str, claim: Claim) -> bool:
        return claim is not None and self._current.get(claim) == address

    def admit(self, address: str, claim: Claim, queued: Iterable[tuple[str, Claim]]) -> bool:
        """May ``address`` (claiming ``claim``) queue acks, besides the ``queued`` ones?"""
        if self.is_current(address, claim):
            return True
        others = [c for a, c in queued if not self.is_current(a, c)]
        if len(others) >= OTHERS_TOTAL:
            why = f"{OTHERS_TOTAL} addresses besides the devices' own already have acks queued"
        elif claim is not None and others.count(claim) >= OTHERS_PER_DEVICE:
            why = f"{OTHERS_PER_DEVICE} addresses besides its own already have acks queued"
        else:
            return True
        self._log_refused(address, claim, why)
        return False

    def _log_refused(self, address: str, claim: Claim, why: str) -> None:
        now = self._clock()
        count, logged = self._refused.get(claim, (0, -REFUSED_LOG_S))
        count += 1
        if now - logged < REFUSED_LOG_S:
            self._refused[claim] = (count, logged)
            return
        if len(self._refused) >= DEVICES_KEPT:
            self._refused.clear()
        self._refused[claim] = (0, now)
        who = "claims no one device" if claim is None else f"device {claim:08x}"
        log.warning(
            "ack to %s (%s) not sent: %s (relayed adverts?); %d such ack(s) refused "
            "since the last report",
            address,
            who,
            why,
            count,
        )


class Slots:
    """``total`` connection slots. An ack to a device's current address (``mine(address)``)
    may take any and is served first; acks to other addresses hold at most ``total - 1`` at
    once (all of them if there is only one)."""

    def __init__(self, total: int, mine: Callable[[str], bool],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.others_max = max(1, total - 1)
        self._mine = mine
        self._clock = clock
        self.used = self.others = 0
        self._queue: list[tuple[str, asyncio.Future[bool]]] = []  # first come first
        # address -> when its last ack connection ended (inf while one is open)
        self._conn_end: dict[str, float] = {}

    def regrant(self) -> None:
        """A queued address may have just become its device's own: a free slot is its now."""
        self._grant()

    def connected_lately(self, address: str, within_s: float = ECHO_S) -> bool:
        """Was an ack connection to ``address`` open within the last ``within_s`` seconds?
        bleak reports its Connected / ServicesResolved changes as detections of the device's
        cached advert: echoes of our own connection, no sign the scanner hears anything."""
        end = self._conn_end.get(address)
        return end is not None and self._clock() - end <= within_s

    @contextlib.asynccontextmanager
    async def hold(self, address: str) -> AsyncIterator[None]:
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((address, waiter))
        self._grant()
        try:
            mine = await waiter
        except BaseException:  # cancelled, perhaps just after being granted a slot
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())
            self._queue = [w for w in self._queue if w[1] is not waiter]
            raise
        self._conn_end[address] = math.inf
        try:
            yield
        finally:
            self._conn_end[address] = self._clock()
            if len(self._conn_end) > _CONN_ENDS_KEPT:  # relays come and go: the oldest go
                del self._conn_end[min(self._conn_end, key=self._conn_end.__getitem__)]
            self._release(mine)

    def _release(self, mine: bool) -> None:
        self.used -= 1
        if not mine:
            self.others -= 1
        self._grant()

    def _grant(self) -> None:
        self._queue = [w for w in self._queue if not w[1].done()]
        while self.used < self.total and self._queue:
            # whether an address is a device's own is asked now: it may have become one
            pick = next((w for w in self._queue if self._mine(w[0])), None)
            mine = pick is not None
            if pick is None:
                if self.others >= self.others_max:
                    return
                pick = self._queue[0]
            self._queue = [w for w in self._queue if w is not pick]
            self.used += 1
            if not mine:
                self.others += 1
            pick[1].set_result(mine)
