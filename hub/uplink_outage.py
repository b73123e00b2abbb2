"""How the uplink reports an outage of the platform's broker: once, not once per retry.

The first failed attempt to reach the broker (or the loss of the connection) is logged once at
WARNING with the reason, and the reconnection once, with how long it took; the retries in
between only at DEBUG. paho's own ERROR lines about a connection that is down are demoted with
them (`PahoLog`). A TLS file the hub cannot use (hub/uplink_tls.py) is logged at ERROR once per
outage and problem, also when the outage was already logged for another reason: only someone at
the hub can fix it. `reason` is the current outage's latest reason, for the status.

`Outage` is used from the uplink's event-loop thread only (hub/uplink_loop.py).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.uplink_config import UplinkConfig

log = logging.getLogger("carebeacon.uplink")

# paho's log lines about a connection that is down: one each per retry or per loss, at ERROR.
# The uplink reports the outage itself, once, so these go to DEBUG (the last kept as a reason).
_PAHO_CONNECTION_NOISE = (
    "Client is not connected",
    "failed to receive on socket",
    "timeout on socket",
)


class Outage:
    """Since when (monotonic) the broker has been unreachable, how many attempts failed,
    paho's last connection error; and the log lines that report them."""

    def __init__(self, config: UplinkConfig) -> None:
        self.config = config
        self.since: float | None = None
        self.attempts = 0
        self.last_error: str | None = None
        self.reason: str | None = None  # why not connected (None once connected)
        self._files_logged: str | None = None  # the TLS file problem logged in this outage

    def unreachable(self, reason: str, *, files: bool = False) -> None:
        """One failed attempt: the first of an outage is logged, the others only counted.
        `files`: the hub's own TLS files are at fault (TlsFileError)."""
        self.attempts += 1
        self.reason = reason
        if files and reason != self._files_logged:
            self._files_logged = reason
            self.since = self.since or time.monotonic()
            c = self.config
            log.error(
                "cannot connect to the platform: %s; the hub keeps running and storing events,"
                " and retries %g s apart, doubling up to %g s (a fixed file is used at the next"
                " attempt, no restart needed)",
                reason,
                c.reconnect_min_delay,
                c.reconnect_max_delay,
            )
            return
        if self.since is not None:
            log.debug("broker still unreachable (attempt %d): %s", self.attempts, reason)
            return
        self.since = time.monotonic()
        c = self.config
        log.warning(
            "platform broker %s unreachable: %s; retrying %g s apart, doubling up to"
            " %g s; events wait in the store",
            c.unix_socket or f"{c.host}:{c.port}",
            reason,
            c.reconnect_min_delay,
            c.reconnect_max_delay,
        )

    def connected(self, protocol: str, session_present: Any, *, quiet: bool = False) -> None:
        """Connected: the end of an outage, if there was one. `quiet`: at DEBUG (a connection
        in a takeover, hub/uplink_takeover.py, which logs that once)."""
        if quiet:
            log.debug("connected (MQTT %s, session present %s)", protocol, session_present)
        elif self.since is not None:
            log.warning(
                "platform broker reachable again after %.1f s (attempts failed: %d): "
                "connected (MQTT %s, session present %s)",
                time.monotonic() - self.since,
                self.attempts,
                protocol,
                session_present,
            )
        else:
            log.info("connected (MQTT %s, session present %s)", protocol, session_present)
        self.since, self.attempts, self.last_error = None, 0, None
        self.reason = self._files_logged = None

    def lost(self, reason: Any) -> None:
        """The connection failed: an outage starts, logged once, retries counted quietly."""
        self.since, self.attempts = time.monotonic(), 0
        self.reason = f"connection lost: {reason}"
        c = self.config
        log.warning(
            "lost the platform broker %s: %s%s; retrying %g s apart, doubling"
            " up to %g s; events wait in the store",
            c.unix_socket or f"{c.host}:{c.port}",
            reason,
            f" ({self.last_error})" if self.last_error else "",
            c.reconnect_min_delay,
            c.reconnect_max_delay,
        )


class PahoLog(logging.LoggerAdapter):
    """paho's logger (client.enable_logger), with its connection noise demoted to DEBUG."""

    def __init__(self, logger: logging.Logger, outage: Outage) -> None:
        super().__init__(logger, {})
        self.outage = outage

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING and str(msg).startswith(_PAHO_CONNECTION_NOISE):
            self.outage.last_error = str(msg) % args if args else str(msg)
            level = logging.DEBUG
        super().log(level, msg, *args, **kwargs)
