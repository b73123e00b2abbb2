"""The MQTT uplink to the county platform (paho-mqtt 2.x; the contract is docs/mqtt.md).

Threading model
---------------
paho has no network thread here: an asyncio event loop drives it (hub/uplink_loop.py). Its
socket is registered with the loop, so PUBLISHes are written, PUBACKs read and every paho
callback run on the loop's thread, and an alarm's path crosses no thread.

* with `loop=` (the hub's event loop) that is the caller's loop, and its callbacks run there,
  one at a time, in the order paho saw things (hub/uplink_callbacks.py);
* without a loop the uplink runs one of its own in a daemon thread, and the callbacks run on
  that thread: they must be quick and never block.

`publish_event`, `publish_state`, `publish_availability`, `forget_device`, `respond` and `close`
may be called from any thread. paho driven from outside must only be called from the loop's
thread, so from any other thread the paho call is posted to the loop, in order (publish_event
then returns True once it is queued). `close` from another thread (the hub calls it from an
executor) waits for the loop to publish the shutdown state and disconnect; on the loop's own
thread, or once the loop stopped, it blocks (up to 1 s) for that PUBACK. A connection attempt
(DNS, TCP, TLS handshake) blocks: it runs in a thread of its own, never on the loop. Uplink's
mid table and stats are behind a lock never held while calling paho (hub/uplink_pubacks.py).

Delivery
--------
The hub's store, not paho's in-memory queue, is the source of truth. `publish_event(ref, ...)`
sends at once when connected and returns True; when not connected it sends nothing and returns
False: the hub re-offers every pending event from `on_connected`. An event is delivered only
when its PUBACK carries a success reason code (< 0x80): `on_delivered(ref)`. A failure code
(e.g. 0x87 Not authorized) gives `on_rejected(ref, Rejection)` and the event stays pending (the
hub raises a fault and retries later; it logs refusals itself, once per reason code, so the
uplink logs a refused event at DEBUG when there is an `on_rejected`). With `require_subscriber`
(default) PUBACK 0x10 "No matching subscribers" is a rejection too: the broker had nobody, not
even a disconnected persistent session, to give the event to, so it dropped it. Duplicates are
expected (paho resends in-flight messages after a reconnect, and the hub re-offers): the
consumer deduplicates on `ref`. Under MQTT 3.1.1 a PUBACK has no reason code: ACL refusals
and "no subscribers" are invisible there and every PUBACK counts as delivered.

Outages are logged once, not per retry (hub/uplink_outage.py), retried by the loop's driver
(the minimum delay, doubling up to the maximum: uplink_loop.py). Unusable TLS files are an
outage (the context is built before each attempt: uplink_tls.py); another client with this
hub's identity is not (uplink_takeover.py). `problem`: why it is down (or knocked off), for the
status. `blocked` (a connection hub.toml forbids, hub/config_platform.py): no attempt ever.
Also: paho's settings (uplink_paho.py), PUBACKs and reason codes (uplink_pubacks.py),
requests and responses (uplink_requests.py), the caller's callbacks (uplink_callbacks.py).

Order: on one connection paho sends in call order; `max_inflight` (set before connect) bounds
the unacknowledged window and later messages queue in order behind it. After a reconnect, resent
and re-offered copies may arrive after newer messages: consumers order by `seq`, not arrival.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from hub import contract
from hub.uplink_callbacks import Callbacks
from hub.uplink_config import UplinkConfig as UplinkConfig
from hub.uplink_loop import Driver, LoopThread, running_on
from hub.uplink_outage import Outage, PahoLog
from hub.uplink_paho import arm_will, check_config, connect_async, new_client, no_delay
from hub.uplink_pubacks import NO_MATCHING_SUBSCRIBERS, Rejection, Tag, Unacked, rejection_of
from hub.uplink_requests import HeldResponses, request_of, response_to
from hub.uplink_retained import Retained
from hub.uplink_takeover import Takeover
from hub.uplink_tls import FreshContext, TlsFileError

log = logging.getLogger("carebeacon.uplink")

UNSUPPORTED_PROTOCOL = 0x84  # CONNACK; paho also reads a 3.1.1 broker's refusal (rc 1) as this


class Uplink(Retained):
    """The hub's MQTT client; its retained state and availability: hub/uplink_retained.py."""

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
        blocked: str | None = None,
    ):
        self.config = c = config
        # why it must not connect at all (hub.toml's, hub/config_platform.py): start() does
        # nothing, so there is no client: publishing returns False, close() has nothing to do
        self.blocked = blocked
        check_config(c)  # ValueError: an unknown protocol, TLS without a broker name
        self.event_topic = contract.event_topic(c.county, c.hub_id)
        self.state_topic = contract.state_topic(c.county, c.hub_id)
        self._callbacks = Callbacks(
            {
                "delivered": on_delivered,
                "rejected": on_rejected,
                "connected": on_connected,
                "disconnected": on_disconnected,
                "request": on_request,
            }
        )
        self._loop = loop  # None: the uplink's own, made by start()
        self._own_loop: LoopThread | None = None
        self._driver: Driver | None = None  # runs self._client on the loop
        self._answered = False  # the current connection (attempt) got a CONNACK
        self._lock = threading.Lock()  # mid tables and stats; never held while calling paho
        Retained.__init__(self)  # state, availability, unpairings, their lock; not connected
        self._unacked = Unacked()
        self._held = HeldResponses()  # responses made while not connected; the loop's thread
        self._client: mqtt.Client | None = None
        self._outage = Outage(c)  # the loop's thread only
        self._takeover = Takeover(c, on_over=self._stable)  # the loop's thread only
        self._tls = FreshContext(c) if c.ca_file else None  # built before each attempt
        self.protocol = "3.1.1" if c.protocol == "3.1.1" else "5"
        self.stats = dict.fromkeys(
            "published delivered rejected no_subscribers connects disconnects requests"
            " bad_requests fallbacks".split(),
            0,
        )

    # ----- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start connecting in the background; retries forever (broker down at start is fine)."""
        if self.blocked:
            return
        if self._loop is None:
            self._own_loop = LoopThread()
            self._loop = self._own_loop.loop
        self._callbacks.loop = self._loop
        with self._lock:
            self._client = client = self._new_client()
        self._on_loop(self._begin, client)

    def _begin(self, client: mqtt.Client) -> None:
        """Drive `client` on the loop and make its first attempt (the loop's thread)."""
        if client is not self._client:
            return
        c = self.config
        connect_async(client, c, self.protocol)  # records the broker; the driver connects
        self._answered = False
        self._driver = Driver(
            client,
            self._loop,  # type: ignore[arg-type]  # set by start()
            min_delay=c.reconnect_min_delay,
            max_delay=c.reconnect_max_delay,
            on_failed=self._attempt_failed,
            on_closed=self._socket_closed,
            prepare=self._tls.build if self._tls is not None else None,
        )
        self._driver.start()

    def _on_loop(self, fn: Any, *args: Any) -> bool:
        """Call fn now on the loop's thread, else post it there (in order); False: loop closed."""
        loop = self._loop
        if loop is None:
            return False
        if running_on(loop):
            fn(*args)
            return True
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            return False
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Orderly stop: retained state offline (reason shutdown), DISCONNECT (so no will)."""
        loop = self._loop
        if self._client is None or loop is None:
            return
        try:
            if running_on(loop) or not loop.is_running():  # nothing can wait on the loop: the
                if self._driver is not None:  # driver reads the state's PUBACK itself (<= 1 s)
                    self._driver.close_now(self._shutdown_state)
            else:
                done = asyncio.run_coroutine_threadsafe(self._close(timeout), loop)
                try:
                    done.result(timeout + 5)
                except Exception as err:  # a timeout, or the loop went away: stop anyway
                    log.warning("uplink close did not finish cleanly: %r", err)
        finally:
            if self._own_loop is not None:
                self._own_loop.stop()

    async def _close(self, timeout: float) -> None:
        if self._driver is not None:
            await self._driver.close(self._shutdown_state, timeout)

    def _shutdown_state(self) -> mqtt.MQTTMessageInfo | None:
        if not self._connected or self._client is None:
            return None
        payload = self._state_payload(False, "shutdown")
        return self._client.publish(self.state_topic, payload, qos=1, retain=True)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def identity_in_use(self) -> bool:
        """Another client is using this hub's identity (uplink_takeover.py): until it stops."""
        return self._takeover.active

    @property
    def problem(self) -> str | None:
        """Why the uplink is not connected, or is knocked off (a takeover); None: all well."""
        if self.blocked:
            return self.blocked
        return self._takeover.text or (None if self._connected else self._outage.reason)

    # ----- publishing -----------------------------------------------------------------------------
    def publish_event(self, ref: str, topic: str, payload: bytes | str | dict) -> bool:
        """Send an event now (True) or, when not connected, do nothing (False): re-offer it from
        on_connected. The outcome arrives as on_delivered(ref) or on_rejected(ref, rejection)."""
        if isinstance(payload, dict):
            payload = contract.encode(payload)
        if not self._connected:
            return False
        return self._publish(topic, payload, retain=False, tag=("event", ref))

    def respond(self, request: contract.Request | None, result: int = contract.Result.OK, *,
                text: str | None = None, data: dict | None = None,
                error: contract.ContractError | None = None) -> None:
        """Answer a request on .../response/<kind>, echoing its transaction id; while not
        connected it is held for the next connection (hub/uplink_requests.py)."""
        topic, payload = response_to(self.config, request, result, text=text, data=data,
                                     error=error)
        self._on_loop(self._respond_now, topic, payload)

    def _respond_now(self, topic: str, payload: bytes) -> None:
        if self._connected:
            self._publish_now(topic, payload, False, ("response", None))
        else:
            self._held.hold(topic, payload)

    def _publish(self, topic: str, payload: bytes | str, *, retain: bool, tag: Tag) -> bool:
        if self._client is None:
            return False
        if running_on(self._loop):
            return self._publish_now(topic, payload, retain, tag)
        # paho is driven by the loop and called from its thread only: post it there, in order
        return self._on_loop(self._publish_now, topic, payload, retain, tag)

    def _publish_now(self, topic: str, payload: bytes | str, retain: bool, tag: Tag) -> bool:
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
            early = self._unacked.published(info.mid, tag)
            self.stats["published"] += 1
        if early is not None:
            self._acked(tag, early)
        if self._driver is not None and self._driver.client is client:
            self._driver.flush()
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    # ----- paho client ----------------------------------------------------------------------------
    def _new_client(self) -> mqtt.Client:
        paho_log = PahoLog(logging.getLogger("carebeacon.uplink.paho"), self._outage)
        client = new_client(self.config, self.protocol, self.state_topic, paho_log, self._tls)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _fall_back(self, old: mqtt.Client) -> None:
        """The broker refused MQTT v5: replace the client by a 3.1.1 one (clean_session=False)."""
        log.warning("broker refused MQTT v5: falling back to 3.1.1 (ACL refusals now invisible)")
        if self._driver is not None:  # paho closes old's socket after this CONNACK: no retry
            self._driver.stop()
        with self._lock:
            self.protocol = "3.1.1"
            self._unacked.clear()
            self.stats["fallbacks"] += 1
            self._client = client = self._new_client()
        self._begin(client)

    # ----- the driver's and paho's callbacks (the loop's thread) ----------------------------------
    def _attempt_failed(self, err: BaseException) -> None:
        files = isinstance(err, TlsFileError)  # the hub's own files: logged at ERROR
        self._outage.unreachable(str(err) or type(err).__name__, files=files)

    def _stable(self) -> None:
        if self._driver is not None:
            self._driver.connected()  # the next outage's retries start at the minimum delay

    def _socket_closed(self) -> None:
        if not self._answered:  # closed before any CONNACK (e.g. TLS refused): a failed attempt
            self._outage.unreachable(self._outage.last_error or "closed before CONNACK")
        self._answered = False

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        self._answered = True
        if reason.is_failure:
            if (
                reason.value == UNSUPPORTED_PROTOCOL
                and self.protocol == "5"
                and self.config.protocol == "auto"
            ):
                self._fall_back(client)
            else:
                self._outage.unreachable(f"connection refused: {reason}")
            return
        c = self.config
        self._count("connects")
        taken_over = self._takeover.connected(self._loop)  # if so, keep backing off
        if not taken_over:
            self._stable()
        self._outage.connected(self.protocol, flags.session_present, quiet=taken_over)
        no_delay(client)
        # fresh time in the will for the next connection
        arm_will(client, c, self.protocol, self.state_topic)
        client.subscribe(contract.request_filter(c.county, c.hub_id), qos=1)
        # Once paho has re-sent the last connection's unacknowledged messages, which it does
        # after on_connect returns: a stale retained state or availability among them, sent
        # after the fresh one, is what the broker would keep.
        self._callbacks.call(self._now_connected, client)
        self._callbacks.dispatch("connected", bool(flags.session_present), self.protocol)

    def _now_connected(self, client: mqtt.Client) -> None:
        if client is not self._client or not client.is_connected():
            return  # gone again meanwhile: the next connection republishes
        self._republish()
        for topic, payload in self._held.take():
            self._publish_now(topic, payload, False, ("response", None))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        was = self._connected
        self._connected = False
        if was:
            self._count("disconnects")
            if not reason.is_failure:
                log.info("disconnected: %s", reason)
            elif not self._takeover.lost(reason.value, flags.is_disconnect_packet_from_server):
                self._outage.lost(reason)  # an outage starts: logged once, retries quietly
            self._callbacks.dispatch("disconnected", str(reason))

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        with self._lock:
            tag = self._unacked.acked(mid, reason)
            if tag is None:
                return
        self._acked(tag, reason)

    def _acked(self, tag: Tag, reason: Any) -> None:
        what, ref = tag
        code = reason.value if self.protocol == "5" else 0
        rejection = rejection_of(what, code, reason, self.config.require_subscriber)
        with self._lock:
            self.stats["delivered" if rejection is None else "rejected"] += 1
            if code == NO_MATCHING_SUBSCRIBERS and what == "event":
                self.stats["no_subscribers"] += 1
        if rejection is None:
            if what == "event":
                self._callbacks.dispatch("delivered", ref)
            self._retained_acked(what, ref)  # an unpairing confirmed (hub/uplink_retained.py)
            return
        if what == "event" and self._callbacks.has("rejected"):
            # the caller reports refused events (the hub: once per reason code while it lasts)
            log.debug("broker refused %s %s: %s", what, ref or "", rejection)
            self._callbacks.dispatch("rejected", ref, rejection)
            return
        log.error("broker refused %s %s: %s", what, ref or "", rejection)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: Any) -> None:
        try:  # nothing a platform sends may break out of paho's read
            try:
                request = request_of(message, self.config)  # None: a retained one, ignored
            except contract.ContractError as err:  # logged by request_of
                self._count("bad_requests")
                self.respond(None, error=err)
                return
            if request is not None:
                self._count("requests")
                self._callbacks.dispatch("request", request)
        except Exception:
            log.exception("request on %s not handled", message.topic)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1
