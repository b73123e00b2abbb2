# When to send an unacknowledged message again.
#
# An alarm goes out at once, then in a short burst (the hub may have missed
# the first advert: scan windows, Wi-Fi coexistence), then with exponential
# backoff up to a ceiling, forever for alarms (max_attempts=0) or for a bounded
# count for routine messages. The ceiling bounds energy: after the burst at
# most one attempt per max_ms. Jitter keeps two devices that failed together
# from colliding again; it comes from a tiny seeded generator, so the schedule
# is deterministic for a given (seed, config) and testable.
#
# Use: start(now_ms, seed); each loop: if due(now_ms): transmit; sent(now_ms).
# `overdue(now_ms)` turns true once notify_ms passed without acknowledgement:
# the device then tells the elder "not delivered yet" (and keeps trying).
from shared.compat import const
from shared.ticks import ticks_add, ticks_diff, ticks_reached

_LCG_MOD = const(65537)  # ZX81 generator: x' = (75x + 74) mod 65537, stays a small int


class Retry:
    def __init__(
        self,
        burst=3,  # attempts at burst_ms spacing: BS 8521-2 repeats a request up to 4 times
        burst_ms=600,  # BS 8521-2 awaits an acknowledgement 600 ms before repeating
        first_ms=2000,  # first backoff after the burst
        factor_pct=200,  # backoff growth per attempt (doubling)
        max_ms=60000,  # ceiling: at most 60 attempts an hour once backed off (energy bound)
        jitter_pct=10,  # +-10 % spread of backoff delays
        max_attempts=0,  # 0 = until acknowledged (alarms); n = give up after n (routine)
        notify_ms=25000,  # BS 8521-2 abandons a link after 25 s without valid data
    ):
        if burst < 1 or burst > 20:
            raise ValueError("burst must be in 1..20")
        if not 20 <= burst_ms <= first_ms:
            raise ValueError("burst_ms must be in 20..first_ms")
        if not first_ms <= max_ms <= 3600000:
            raise ValueError("max_ms must be in first_ms..3600000")
        if not 100 <= factor_pct <= 400:
            raise ValueError("factor_pct must be in 100..400")
        if not 0 <= jitter_pct <= 50:
            raise ValueError("jitter_pct must be in 0..50")
        if max_attempts < 0 or notify_ms < 0:
            raise ValueError("max_attempts and notify_ms must be >= 0")
        self.burst = burst
        self.burst_ms = burst_ms
        self.first_ms = first_ms
        self.factor_pct = factor_pct
        self.max_ms = max_ms
        self.jitter_pct = jitter_pct
        self.max_attempts = max_attempts
        self.notify_ms = notify_ms
        self.active = False
        self.attempts = 0
        self.started_at = 0
        self.next_at = 0
        self.elapsed_ms = 0  # accumulated, saturating: safe over any number of days
        self._last = 0
        self._backoff = first_ms
        self._rng = 1

    def start(self, now_ms, seed=0):
        self.active = True
        self.attempts = 0
        self.started_at = now_ms
        self.next_at = now_ms
        self.elapsed_ms = 0
        self._last = now_ms
        self._backoff = self.first_ms
        self._rng = (seed % (_LCG_MOD - 1)) + 1

    def stop(self):
        """Acknowledged (or cancelled): nothing more to send."""
        self.active = False

    def _advance(self, now_ms):
        d = ticks_diff(now_ms, self._last)
        if d > 0:
            self.elapsed_ms = min(self.elapsed_ms + d, 0x3FFFFFFF)
            self._last = now_ms

    def due(self, now_ms):
        self._advance(now_ms)
        return self.active and ticks_reached(now_ms, self.next_at)

    def overdue(self, now_ms):
        self._advance(now_ms)
        return self.active and self.elapsed_ms >= self.notify_ms

    def delay_after(self):
        """The wait after the attempt just counted (deterministic given the seed)."""
        if self.attempts < self.burst:
            return self.burst_ms
        d = self._backoff
        nxt = d * self.factor_pct // 100
        self._backoff = nxt if nxt < self.max_ms else self.max_ms
        if self.jitter_pct:
            self._rng = (75 * self._rng + 74) % _LCG_MOD
            span = d * self.jitter_pct // 100
            d = d - span + (self._rng * 2 * span) // _LCG_MOD
        return d

    def sent(self, now_ms):
        """Count the attempt made at `now_ms` and schedule the next one."""
        self._advance(now_ms)
        self.attempts += 1
        if self.max_attempts and self.attempts >= self.max_attempts:
            self.active = False
            return
        self.next_at = ticks_add(now_ms, self.delay_after())
