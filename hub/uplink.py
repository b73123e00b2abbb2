"""The MQTT uplink to the county platform (paho-mqtt 2.x; the contract is docs/mqtt.md).

Threading model
---------------
paho runs its network loop in its own thread (`loop_start()`); every paho callback runs there.
`Uplink` turns them into the caller's callbacks:

* with `loop=` (an asyncio event loop) each callback is posted with `loop.call_soon_threadsafe`:
  the hub's callbacks run on its event-loop thread, one at a time, in the order paho saw things;
* without a loop they run on the paho thread itself and must be quick and never block.

`publish_event`, `publish_state`, `publish_availability`, `forget_device`, `respond` and `close`
may be called from any thread. paho's publish is thread-safe. Uplink's mid table is behind a
lock that is never held while calling into paho, because paho calls `on_publish` while holding
its own message lock (a PUBACK can even arrive before `publish()` returns: it is parked in
`_early` and matched when the mid is known).

Delivery
--------
The hub's store, not paho's in-memory queue, is the source of truth. `publish_event(ref, ...)`
sends at once when connected and returns True; when not connected it sends nothing and returns
False: the hub re-offers every pending event from `on_connected`. An event is delivered only
when its PUBACK carries a success reason code (< 0x80): `on_delivered(ref)`. A failure code
(e.g. 0x87 Not authorized) gives `on_rejected(ref, Rejection)` and the event stays pending (the
hub raises a fault and retries later). With `require_subscriber` (default) PUBACK 0x10 "No
matching subscribers" is a rejection too: the broker had nobody, not even a disconnected
persistent session, to give the event to, so it dropped it. Duplicates are expected (paho
resends in-flight messages after a reconnect, and the hub re-offers): the consumer deduplicates
on `ref`. Under MQTT 3.1.1 a PUBACK has no reason code: ACL refusals and "no subscribers" are
invisible there and every PUBACK counts as delivered.

Outages: the first failed attempt to reach the broker (or the loss of the connection) is logged
once at WARNING with the reason, and the reconnection once, with how long it took; the retries in
between only at DEBUG. paho's own per-retry "Client is not connected" ERROR is demoted with them.

Order: on one connection paho sends in call order; `max_inflight` (set before connect) bounds
the unacknowledged window and later messages queue in order behind it. After a reconnect, resent
and re-offered copies may arrive after newer messages: consumers order by `seq`, not arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub import contract

log = logging.getLogger("carebeacon.uplink")

UNSUPPORTED_PROTOCOL = 0x84  # CONNACK; paho also reads a 3.1.1 broker's refusal (rc 1) as this
NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass
class UplinkConfig:
    hub_id: str  # also the MQTT client id and the CN of the hub's certificate
    county: str
    host: str = "localhost"
    port: int = 8883
    unix_socket: str | None = None  # connect to this Unix socket instead of host:port
    ca_file: str | None = None  # TLS when set; cert_file/key_file: the client certificate
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: int = 30  # s; the broker declares the hub gone (last will) after 1.5x this
    session_expiry: int = 7 * 24 * 3600  # v5 SessionExpiryInterval: requests queue this long
    protocol: str = "auto"  # "auto": v5, falling back to 3.1.1 if refused; "5"; "3.1.1"
    max_inflight: int = 20
    reconnect_min_delay: float = 1.0  # seconds, doubling up to the max
    reconnect_max_delay: float = 60.0
    will_delay: int = 0  # v5 WillDelayInterval: a reconnect within this many s hides the will
    require_subscriber: bool = True  # PUBACK 0x10 "No matching subscribers" = not delivered
    software: str | None = None  # reported in the state message


# paho's log lines about a connection that is down: one each per retry or per loss, at ERROR.
# The uplink reports the outage itself, once, so these go to DEBUG (the last kept as a reason).
_PAHO_CONNECTION_NOISE = (
    "Client is not connected",
    "failed to receive on socket",
    "timeout on socket",
)


class _PahoLog(logging.LoggerAdapter):
    """paho's logger (client.enable_logger), with its connection noise demoted to DEBUG."""

    def __init__(self, logger: logging.Logger, uplink: Uplink) -> None:
        super().__init__(logger, {})
        self.uplink = uplink

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING and str(msg).startswith(_PAHO_CONNECTION_NOISE):
            self.uplink._last_error = str(msg) % args if args else str(msg)
            level = logging.DEBUG
        super().log(level, msg, *args, **kwargs)


@dataclass(frozen=True)
class Rejection:
    code: int  # the PUBACK reason code
    name: str

    def __str__(self) -> str:
        return f"0x{self.code:02X} {self.name}"


class Uplink:
    def __init__(
        self,
        config: UplinkConfig,
        *,
        on_delivered: Callable[[str], Any] | None = None,
        on_rejected: Callable[[str, Rejection], Any] | None = None,
        on_connected: Callable[[bool, str], Any] | None = None,
        on_disconnected: Callable[[str], Any] | None = None,
        on_request: Callable[[contract.Request], Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ):
        self.config = c = config
        if c.protocol not in ("auto", "5", "3.1.1"):
            raise ValueError("protocol must be auto, 5 or 3.1.1")
        self.event_topic = contract.event_topic(c.county, c.hub_id)
        self.state_topic = contract.state_topic(c.county, c.hub_id)
        self._cb = {
            "delivered": on_delivered,
            "rejected": on_rejected,
            "connected": on_connected,
            "disconnected": on_disconnected,
            "request": on_request,
        }
        self._loop = loop
        self._lock = threading.Lock()  # mid tables and stats; never held while calling paho
        # Orders state/availability publishes against a (re)connection, so what the hub
        # republishes on connect is never older than an update made meanwhile. Held while
        # publishing: safe, as paho's on_publish (under paho's own lock) takes only self._lock.
        self._state_lock = threading.Lock()
        self._tags: dict[int, tuple[str, str | None]] = {}  # mid -> (what, ref), unacknowledged
        self._early: dict[int, Any] = {}  # mid -> reason: PUBACKs that beat publish() returning
        self._availability: dict[int, bool] = {}  # latest known; republished on every connect
        self._radio: tuple[str, str | None] = ("unknown", None)
        self._connected = False
        self._client: mqtt.Client | None = None
        # Outage bookkeeping, paho's thread only: since when (monotonic) the broker has been
        # unreachable, how many attempts failed, paho's last connection error.
        self._down_since: float | None = None
        self._down_attempts = 0
        self._last_error: str | None = None
        self.protocol = "3.1.1" if c.protocol == "3.1.1" else "5"
        self.stats = dict.fromkeys(
            (
                "published",
                "delivered",
                "rejected",
                "no_subscribers",
                "connects",
                "disconnects",
                "requests",
                "bad_requests",
                "fallbacks",
            ),
            0,
        )

    # ----- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start connecting in the background; retries forever (broker down at start is fine)."""
        with self._lock:
            self._client = client = self._new_client()
        self._connect_async(client)
        client.loop_start()

    def close(self, timeout: float = 2.0) -> None:
        """Orderly stop: retained state offline (reason shutdown), DISCONNECT (so no will)."""
        client, c = self._client, self.config
        if client is None:
            return
        if self._connected:
            msg = contract.build_state(
                hub=c.hub_id,
                county=c.county,
                online=False,
                reason="shutdown",
                radio=self._radio[0],
                radio_detail=self._radio[1],
                software=c.software,
            )
            info = client.publish(self.state_topic, contract.encode(msg), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)  # connected: not the queued case, which raises
            except (RuntimeError, ValueError):
                pass
        client.disconnect()
        client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected

    # ----- publishing -----------------------------------------------------------------------------
    def publish_event(self, ref: str, topic: str, payload: bytes | str | dict) -> bool:
        """Send an event now (True) or, when not connected, do nothing (False): re-offer it from
        on_connected. The outcome arrives as on_delivered(ref) or on_rejected(ref, rejection)."""
        if isinstance(payload, dict):
            payload = contract.encode(payload)
        if not self._connected:
            return False
        return self._publish(topic, payload, retain=False, tag=("event", ref))

    def publish_availability(
        self, device_id: int, online: bool, last_seen: float | None = None
    ) -> None:
        """Record a device's availability: published (retained) on change if connected, and
        after every connect."""
        with self._state_lock:
            changed = self._availability.get(device_id) != online
            self._availability[device_id] = online
            if changed and self._connected:
                self._send_availability(device_id, online, last_seen)

    def forget_device(self, device_id: int) -> None:
        """Remove an unpaired device's retained availability (empty retained payload)."""
        with self._state_lock:
            self._availability.pop(device_id, None)
            if self._connected:
                c = self.config
                topic = contract.availability_topic(c.county, c.hub_id, device_id)
                self._publish(topic, b"", retain=True, tag=("availability", None))

    def publish_state(self, radio: str, radio_detail: str | None = None) -> None:
        """Report the radio's health in the retained state message (online, reason update)."""
        with self._state_lock:
            self._radio = (radio, radio_detail)
            if self._connected:
                self._send_state("update")

    def respond(
        self,
        request: contract.Request | None,
        result: int = contract.Result.OK,
        *,
        text: str | None = None,
        data: dict | None = None,
        error: contract.ContractError | None = None,
    ) -> None:
        """Answer a request on .../response/<kind>, echoing its transaction id."""
        c = self.config
        if error is not None:
            msg = contract.error_response(c.hub_id, c.county, error)
            kind = error.kind
        else:
            assert request is not None
            kind = request.kind
            msg = contract.response(
                hub=c.hub_id,
                county=c.county,
                kind=kind,
                transaction=request.transaction,
                result=result,
                text=text,
                data=data,
            )
        # Sent even while disconnected (paho queues it): the platform retries unanswered requests.
        self._publish(
            contract.response_topic(c.county, c.hub_id, kind),
            contract.encode(msg),
            retain=False,
            tag=("response", None),
        )

    def _publish(
        self, topic: str, payload: bytes | str, *, retain: bool, tag: tuple[str, str | None]
    ) -> bool:
        client = self._client
        if client is None:
            return False
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning(
                "publish %s %s failed: %s", tag[0], tag[1] or topic, mqtt.error_string(info.rc)
            )
            return False
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._tags[info.mid] = tag
            self.stats["published"] += 1
        if early is not None:
            self._acked(tag, early)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _send_state(self, reason: str) -> None:
        c = self.config
        msg = contract.build_state(
            hub=c.hub_id,
            county=c.county,
            online=True,
            reason=reason,
            radio=self._radio[0],
            radio_detail=self._radio[1],
            software=c.software,
        )
        self._publish(self.state_topic, contract.encode(msg), retain=True, tag=("state", None))

    def _send_availability(
        self, device_id: int, online: bool, last_seen: float | None = None
    ) -> None:
        c = self.config
        msg = contract.build_availability(
            hub=c.hub_id, county=c.county, device_id=device_id, online=online, last_seen=last_seen
        )
        self._publish(
            contract.availability_topic(c.county, c.hub_id, device_id),
            contract.encode(msg),
            retain=True,
            tag=("availability", None),
        )

    # ----- paho client ----------------------------------------------------------------------------
    def _new_client(self) -> mqtt.Client:
        c = self.config
        v5 = self.protocol == "5"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=c.hub_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            transport="unix" if c.unix_socket else "tcp",
        )
        paho_log = _PahoLog(logging.getLogger("carebeacon.uplink.paho"), self)
        client.enable_logger(paho_log)  # type: ignore[arg-type]  # paho only calls .log()
        if c.ca_file:
            client.tls_set(ca_certs=c.ca_file, certfile=c.cert_file, keyfile=c.key_file)
            if c.unix_socket:  # no host name to check on a local socket; the chain still is
                client.tls_insecure_set(True)
        client.max_inflight_messages_set(c.max_inflight)  # must precede connect
        delays: Any = (c.reconnect_min_delay, c.reconnect_max_delay)  # paho takes float seconds
        client.reconnect_delay_set(*delays)
        self._arm_will(client)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _arm_will(self, client: mqtt.Client) -> None:
        c = self.config
        will = contract.build_state(
            hub=c.hub_id,
            county=c.county,
            online=False,
            reason="connection_lost",
            software=c.software,
        )
        props = None
        if self.protocol == "5" and c.will_delay > 0:
            props = Properties(PacketTypes.WILLMESSAGE)
            props.WillDelayInterval = c.will_delay
        client.will_set(
            self.state_topic, contract.encode(will), qos=1, retain=True, properties=props
        )

    def _connect_async(self, client: mqtt.Client) -> None:
        c = self.config
        host = c.unix_socket or c.host
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = c.session_expiry
            client.connect_async(host, c.port, c.keepalive, clean_start=False, properties=props)
        else:
            client.connect_async(host, c.port, c.keepalive)

    def _fall_back(self, old: mqtt.Client) -> None:
        """The broker refused MQTT v5: replace the client by a 3.1.1 one (clean_session=False)."""
        log.warning("broker refused MQTT v5: falling back to 3.1.1 (ACL refusals now invisible)")
        old.loop_stop()  # called from old's own thread: only flags it to end, no join
        with self._lock:
            self.protocol = "3.1.1"
            self._tags.clear()
            self._early.clear()
            self.stats["fallbacks"] += 1
            self._client = client = self._new_client()
        self._connect_async(client)
        client.loop_start()

    # ----- paho callbacks (paho's network thread) -------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        if reason.is_failure:
            if (
                reason.value == UNSUPPORTED_PROTOCOL
                and self.protocol == "5"
                and self.config.protocol == "auto"
            ):
                self._fall_back(client)
            else:
                self._unreachable(f"connection refused: {reason}")
            return
        c = self.config
        self._count("connects")
        if self._down_since is not None:
            log.warning(
                "platform broker reachable again after %.1f s (attempts failed: %d): "
                "connected (MQTT %s, session present %s)",
                time.monotonic() - self._down_since,
                self._down_attempts,
                self.protocol,
                flags.session_present,
            )
        else:
            log.info(
                "connected (MQTT %s, session present %s)", self.protocol, flags.session_present
            )
        self._down_since, self._down_attempts, self._last_error = None, 0, None
        _no_delay(client)
        self._arm_will(client)  # fresh time in the will for the next connection
        client.subscribe(contract.request_filter(c.county, c.hub_id), qos=1)
        with self._state_lock:
            self._send_state("connected")
            for device_id, online in self._availability.items():  # the broker may have lost
                self._send_availability(device_id, online)  # its retained messages
            self._connected = True
        self._dispatch("connected", bool(flags.session_present), self.protocol)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        if client is not self._client:
            return
        err = sys.exception()  # paho calls this while handling the attempt's OSError
        if err is not None:
            self._unreachable(str(err) or type(err).__name__)
        else:
            self._unreachable(self._last_error or "connection failed")

    def _unreachable(self, reason: str) -> None:
        """One failed attempt: the first of an outage is logged, the others only counted."""
        self._down_attempts += 1
        if self._down_since is not None:
            log.debug("broker still unreachable (attempt %d): %s", self._down_attempts, reason)
            return
        self._down_since = time.monotonic()
        c = self.config
        log.warning(
            "platform broker %s unreachable: %s; retrying %g s apart, doubling up to"
            " %g s; events wait in the store",
            c.unix_socket or f"{c.host}:{c.port}",
            reason,
            c.reconnect_min_delay,
            c.reconnect_max_delay,
        )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        was = self._connected
        self._connected = False
        if was:
            self._count("disconnects")
            if reason.is_failure:  # an outage starts: logged once, retries counted quietly
                self._down_since, self._down_attempts = time.monotonic(), 0
                c = self.config
                log.warning(
                    "lost the platform broker %s: %s%s; retrying %g s apart, doubling"
                    " up to %g s; events wait in the store",
                    c.unix_socket or f"{c.host}:{c.port}",
                    reason,
                    f" ({self._last_error})" if self._last_error else "",
                    c.reconnect_min_delay,
                    c.reconnect_max_delay,
                )
            else:
                log.info("disconnected: %s", reason)
            self._dispatch("disconnected", str(reason))

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        with self._lock:
            tag = self._tags.pop(mid, None)
            if tag is None:
                self._early[mid] = reason
                return
        self._acked(tag, reason)

    def _acked(self, tag: tuple[str, str | None], reason: Any) -> None:
        what, ref = tag
        code = reason.value if self.protocol == "5" else 0
        # 0x10 matters for events only: a retained message is stored even when nobody subscribes
        refused = code >= 0x80 or (
            code == NO_MATCHING_SUBSCRIBERS and what == "event" and self.config.require_subscriber
        )
        with self._lock:
            self.stats["rejected" if refused else "delivered"] += 1
            if code == NO_MATCHING_SUBSCRIBERS and what == "event":
                self.stats["no_subscribers"] += 1
        if not refused:
            if what == "event":
                self._dispatch("delivered", ref)
            return
        rejection = Rejection(code, reason.getName())
        log.error("broker refused %s %s: %s", what, ref or "", rejection)
        if what == "event":
            self._dispatch("rejected", ref, rejection)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: Any) -> None:
        try:
            self._handle_request(message)
        except Exception:  # nothing a platform sends may end paho's network thread
            log.exception("request on %s not handled", message.topic)

    def _handle_request(self, message: Any) -> None:
        c = self.config
        if message.retain:  # replayed at subscription: requests must never be retained
            log.warning("ignoring a retained request on %s", message.topic)
            return
        try:
            request = contract.parse_request(
                message.topic, message.payload, county=c.county, hub_id=c.hub_id
            )
        except contract.ContractError as err:
            self._count("bad_requests")
            log.warning("bad request on %s: %s", message.topic, err)
            self.respond(None, error=err)
            return
        self._count("requests")
        self._dispatch("request", request)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _dispatch(self, name: str, *args: Any) -> None:
        fn = self._cb.get(name)
        if fn is None:
            return
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._run, fn, args)
            except RuntimeError:  # the event loop is closed: the hub is going away
                log.debug("dropped %s callback: event loop closed", name)
        else:
            self._run(fn, args)

    @staticmethod
    def _run(fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        except Exception:  # a faulty callback must not kill paho's thread or the event loop
            log.exception("uplink callback %r failed", getattr(fn, "__name__", fn))


def _no_delay(client: mqtt.Client) -> None:
    """Send small packets at once: with Nagle on, a response waits ~40 ms behind the PUBACK
    before it (measured on loopback). Unix sockets have no such option."""
    sock = client.socket()
    if sock is not None and getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
