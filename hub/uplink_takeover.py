"""Another client connected with this hub's identity (a cloned SD card, a copied key).

The broker keeps one connection per client id (= the certificate's CN, docs/mqtt.md Security):
each hub's connect ends the other's connection, and both reconnect. Treated as an outage, the
pair knocked each other off about once a second for ever, the retry delay reset to the minimum
on every connect and two WARNING lines per round. Recognised here instead:

* MQTT 5: the broker's DISCONNECT may say so (0x8E Session taken over: EMQX, HiveMQ);
* otherwise the broker just closes the socket: MQTT 3.1.1 has no reason to give, and mosquitto
  2.0.11 sends no DISCONNECT to an MQTT 5 client either (measured, with and without TLS). So a
  loss followed by `SUSPECT_AFTER` more, each within `BRIEF_S` of its connect, is taken for
  one. The row's first loss is reported as an outage (it may be one); the next are
  logged at INFO until the takeover is clear.

From the first, until a connection lasts `stable_s` (longer than the other client's longest
retry delay: it has stopped), the episode lasts: logged once at ERROR, then only counted; the
uplink does not reset its retry delay on connect, so both back off to the maximum delay (each
connection then lasts about as long as the other's delay); `text` says it for the status.

`Takeover` is used from the uplink's event-loop thread only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.uplink_config import UplinkConfig

log = logging.getLogger("carebeacon.uplink")

SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason code
BRIEF_S = 5.0  # before either backs off, the other client retries ~1 s after each drop
# Without the broker's reason it may also be a broker that keeps dropping the hub (restarts,
# a load balancer draining, an oversized packet): the broker's own log tells which.
OR_DROPPED = (
    " (Or a broker that keeps dropping this hub: its log says 'already connected' for a"
    " takeover.)"
)
SUSPECT_AFTER = 3  # brief losses after a row's first


class Takeover:
    """`on_over()`: the episode ended (the uplink resets its retry delay, as on any connect)."""

    def __init__(self, config: UplinkConfig, on_over: Callable[[], Any] | None = None) -> None:
        self.config = config
        self._on_over = on_over
        self.stable_s = max(3 * config.reconnect_max_delay, 2 * BRIEF_S)
        self.since: float | None = None  # wall time the episode began; None: no episode
        self.count = 0  # connections taken over in this episode
        self.text: str | None = None  # for the status while the episode lasts
        self._up_at: float | None = None  # monotonic: the current connection's CONNACK
        self._row = 0  # losses in a row with no reason (see `lost`)

    @property
    def active(self) -> bool:
        return self.since is not None

    def connected(self, loop: asyncio.AbstractEventLoop | None) -> bool:
        """A CONNACK accepted the hub. True: in an episode (then checked once `stable_s` on)."""
        self._up_at = time.monotonic()
        if self.since is not None and loop is not None:
            loop.call_later(self.stable_s + 0.1, self.check)
        return self.since is not None

    def check(self) -> None:
        """Ends the episode once the current connection has lasted `stable_s`."""
        up = self._up_at
        if self.since is not None and up is not None and time.monotonic() - up >= self.stable_s:
            log.warning(
                "no other client has taken this hub's session for %.0f s (it was taken over %d"
                " times): the other client has stopped",
                time.monotonic() - up,
                self.count,
            )
            self.since, self.count, self.text = None, 0, None
            if self._on_over is not None:
                self._on_over()

    def lost(self, code: int, said: bool) -> bool:
        """The connection failed: reason `code`, `said` by the broker in a DISCONNECT (else the
        socket closed). False: an outage, for the caller to report (a row's first loss). True:
        taken over, or a brief one in a row: logged here, at INFO until it is clearly a
        takeover (should the broker be gone, the next attempt's failure says so)."""
        self.check()
        lasted = time.monotonic() - self._up_at if self._up_at is not None else None
        self._up_at = None
        brief = lasted is not None and lasted < BRIEF_S
        # a row: losses with no reason given, each after the first within BRIEF_S of its connect
        self._row = 0 if said else (self._row + 1 if brief and self._row else 1)
        if said:  # a reason from the broker: only this one is a takeover
            taken = code == SESSION_TAKEN_OVER
            how = "the broker gave its session to another client (DISCONNECT 0x8E)"
        else:  # an episode's connections last up to the other's longest retry delay
            taken = self.active or self._row > SUSPECT_AFTER
            how = (
                f"the broker closed its connection {self._row} times in a row, each within"
                f" {BRIEF_S:g} s of accepting it, giving no reason: most likely a takeover"
            )
        if not taken:
            if self._row > 1:
                log.info(
                    "the broker closed the connection %.1f s after accepting it, giving no"
                    " reason (%d times in a row); reconnecting",
                    lasted,
                    self._row,
                )
            return self._row > 1
        self.count += 1
        if self.since is None:
            self.since = time.time()
            log.error(
                "another client is using this hub's identity (client id %s, its certificate):"
                " %s. A cloned SD card or a copied key?%s This hub now backs off (retries up to"
                " %g s apart); while this lasts it is connected only part of the time",
                self.config.hub_id,
                how,
                "" if said else OR_DROPPED,
                self.config.reconnect_max_delay,
            )
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since))
        self.text = (
            f"another client uses this hub's identity ({self.config.hub_id}): its session was"
            f" taken over {self.count} time(s) since {started}"
            + ("" if said else " (by the look of it: or the broker keeps dropping it)")
        )
        return True
