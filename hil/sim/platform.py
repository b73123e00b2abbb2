"""The county platform's side, as MQTT clients: what the demo's platform console, the rigs,
the end-to-end tests and the bench watch.

    p = Platform(host, port, tls=broker.tls("platform"), county="sim-county").wait_connected()
    p.events[ref], p.arrived[ref]        # first copy of each event, monotonic arrival time
    p.duplicates                         # copies beyond the first (deduplicate on ref)
    p.availability["0000a1b2"]           # True / False, from the retained availability
    p.unpaired                           # device ids whose availability was cleared
    p.wait_event(ref); p.wait_state(pred); p.of_type("fault")
    p.request("ack", {"ref": ref, "operator": "op-1"}, hub="hub-demo")   # -> its transaction
    p.request_and_wait("ack", {"transaction": "t-1", "ref": ref}, hub="hub-a")  # -> the answer
    retained(host, port, topic, tls=broker.tls("platform-2"))   # what a new subscriber gets

A persistent MQTT v5 session (clean_start false) with the platform's client certificate, as
docs/mqtt.md asks of a consumer; `on_event(msg, arrived)` lets the demo print as they come.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hil.sim.wait import wait_for

TOPICS = ("+/event", "+/state", "+/device/+/availability", "+/response/+")


def _client(cn: str, tls) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cn, protocol=mqtt.MQTTv5)
    if tls is not None:
        c.tls_set(ca_certs=tls.ca, certfile=tls.cert, keyfile=tls.key)
    return c


class Platform:
    """The platform's consumer. `topics`: below carebeacon/v1/<county>/ (the bench wants
    events only); `tls`: hil.sim.broker.TlsFiles."""

    def __init__(self, host: str, port: int, *, county: str, tls=None, cn: str = "platform",
                 topics: tuple[str, ...] = TOPICS, on_event=None, on_response=None):
        self.base = f"carebeacon/v1/{county}"
        self.topics = topics
        self.on_event, self.on_response = on_event, on_response
        self.lock = threading.Lock()
        self.events: dict[str, dict] = {}  # ref -> first copy
        self.arrived: dict[str, float] = {}  # ref -> monotonic time of its first copy
        self.arrivals: list[str] = []  # every copy's ref, in arrival order
        self.availability: dict[str, bool] = {}
        self.unpaired: list[str] = []  # an empty availability: the device was unpaired
        self.states: list[dict] = []
        self.responses: list[tuple[str, dict]] = []  # (kind from the topic, message)
        self.bad: list[tuple[str, bytes]] = []  # payloads that were not JSON
        self.subscribed = threading.Event()
        self._tx = itertools.count(1)
        c = _client(cn, tls)
        c.reconnect_delay_set(0.05, 0.5)
        c.on_connect, c.on_subscribe, c.on_message = self._conn, self._subbed, self._msg
        c.on_disconnect = lambda *a: self.subscribed.clear()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect_async(host, port, 30, clean_start=False, properties=props)
        c.loop_start()
        self.c = c

    def wait_connected(self, timeout: float = 10.0) -> Platform:
        if not self.subscribed.wait(timeout):
            raise TimeoutError("the platform consumer could not subscribe")
        return self

    def _conn(self, c, userdata, flags, reason, props) -> None:
        if not reason.is_failure:
            # paho leaves Nagle on: a request written right after a PUBACK waits ~40 ms for
            # the broker's delayed ACK. Not what a test client should measure.
            c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.subscribe([(f"{self.base}/{t}", 1) for t in self.topics])

    def _subbed(self, *args) -> None:
        self.subscribed.set()

    def _msg(self, c, userdata, m) -> None:
        now = time.monotonic()
        parts = m.topic.split("/")
        if not m.payload and parts[4] == "device" and len(parts) > 6:  # unpaired: forget it
            with self.lock:
                self.availability.pop(parts[5], None)
                self.unpaired.append(parts[5])
            return
        try:
            msg = json.loads(m.payload)
        except ValueError:
            with self.lock:
                self.bad.append((m.topic, m.payload))
            return
        first = False
        with self.lock:
            if parts[4] == "event":
                self.arrivals.append(msg["ref"])
                if msg["ref"] not in self.events:
                    first = True
                    self.events[msg["ref"]] = msg
                    self.arrived[msg["ref"]] = now
            elif parts[4] == "state":
                self.states.append(msg)
            elif parts[4] == "device" and len(parts) > 6:
                self.availability[parts[5]] = msg.get("state") == "online"
            elif parts[4] == "response":
                self.responses.append((parts[5], msg))
        if first and self.on_event:
            self.on_event(msg, now)
        if parts[4] == "response" and self.on_response:
            self.on_response(parts[5], msg)

    # -- what arrived --------------------------------------------------------------------------
    @property
    def duplicates(self) -> int:
        with self.lock:
            return len(self.arrivals) - len(set(self.arrivals))

    def snapshot(self) -> list[tuple[str, dict, float]]:
        with self.lock:
            return [(r, e, self.arrived[r]) for r, e in self.events.items()]

    def of_type(self, type_: str) -> list[dict]:
        with self.lock:
            return [e for e in self.events.values() if e["type"] == type_]

    def wait_event(self, ref: str, timeout: float = 15.0) -> dict:
        return wait_for(lambda: self.events.get(ref), timeout, f"event {ref} at the platform")

    def wait_state(self, pred, timeout: float = 20.0, what: str = "a hub state",
                   after: int | None = None) -> dict:
        """The latest state message once it satisfies `pred`; with `after`, the first one
        that does among those received after the first `after`."""
        def found():
            with self.lock:
                if after is None:
                    return self.states[-1] if self.states and pred(self.states[-1]) else None
                return next((s for s in self.states[after:] if pred(s)), None)
        return wait_for(found, timeout, what)

    # -- operator requests ---------------------------------------------------------------------
    def _publish(self, kind: str, payload: bytes | str, hub: str):
        return self.c.publish(f"{self.base}/{hub}/request/{kind}", payload, qos=1)

    def request(self, kind: str, body: dict, *, hub: str) -> str:
        """Publish an operator request with v 1 and a fresh transaction id; returns the id
        (its answer shows up in .responses, see response())."""
        tx = f"tx-{next(self._tx)}"
        self._publish(kind, json.dumps({"v": 1, "transaction": tx, **body}), hub) \
            .wait_for_publish(5)
        return tx

    def response(self, tx: str) -> dict | None:
        with self.lock:
            return next((m for _k, m in self.responses if m.get("transaction") == tx), None)

    def request_and_wait(self, kind: str, body: dict | bytes | str, *, hub: str,
                         timeout: float = 10.0) -> dict:
        """Publish `body` exactly as given (a dict as JSON, nothing added: the caller picks
        the transaction, or fuzzes the payload) and return the next response, with its
        topic's kind as `_kind`. The hub answers each request exactly once, so this pairs
        them as long as only one caller at a time asks and nothing else is outstanding."""
        with self.lock:
            n = len(self.responses)
        self._publish(kind, json.dumps(body) if isinstance(body, dict) else body, hub) \
            .wait_for_publish(5)
        wait_for(lambda: len(self.responses) > n, timeout, f"the response to request/{kind}")
        with self.lock:
            k, m = self.responses[n]
        return {"_kind": k, **m}

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def retained(host: str, port: int, topic: str, *, tls=None, cn: str = "platform-2",
             timeout: float = 5.0) -> dict:
    """What a client subscribing now gets as the retained message of `topic` (a second
    platform identity: `cn` must not be a Platform's, whose session it would take over)."""
    got: list[bytes] = []
    c = _client(cn, tls)
    c.on_connect = lambda cl, *a: cl.subscribe(topic, 1)
    c.on_message = lambda cl, u, m: got.append(m.payload) if m.retain else None
    c.connect(host, port, 30, clean_start=True)
    c.loop_start()
    try:
        wait_for(lambda: got, timeout, f"the retained message on {topic}")
    finally:
        c.disconnect()
        c.loop_stop()
    return json.loads(got[0])
