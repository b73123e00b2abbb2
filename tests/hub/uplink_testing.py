"""Helpers for the uplink tests (test_uplink_*.py): hub/uplink.py against a real mosquitto
(tests/broker.py, the `broker` fixture in conftest.py): a config, an event, the hub's
delivery rules around the uplink (Hub), a plain paho client (Client)."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker import Broker
from hub import contract
from hub.uplink import Uplink, UplinkConfig

COUNTY = "test-county"  # as in tests/hub/conftest.py
P = f"{contract.PREFIX}/{COUNTY}"
DEV = 0x1A2B3C4D


def wait_until(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def config(broker: Broker, hub_id: str = "hub-a", files=None, **kw) -> UplinkConfig:
    f = files if files is not None else broker.tls(hub_id)
    base = dict(
        hub_id=hub_id,
        county=COUNTY,
        host=broker.host,
        port=broker.port,
        ca_file=f.ca,
        cert_file=f.cert,
        key_file=f.key,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.3,
        keepalive=5,
        session_expiry=600,
    )
    base.update(kw)
    return UplinkConfig(**base)


def event(n: int, hub_id: str = "hub-a", device: int = DEV) -> tuple[str, dict]:
    ref = contract.make_ref(hub_id, device, n)
    msg = contract.build_event(
        ref=ref,
        hub=hub_id,
        county=COUNTY,
        household="hh-1",
        type="manual_alarm",
        device=contract.Device(device, "button", "bedside", "bedroom"),
        event_time=time.time() - 0.5,
        receive_time=time.time(),
        battery=90,
        rssi=-60,
    )
    return ref, msg


class Hub:
    """The hub around the uplink, reduced to its delivery rules: a pending table (the store) that is
    re-offered on every connect and cleared only by on_delivered."""

    def __init__(self, cfg: UplinkConfig, **kw):
        self.pending: dict[str, bytes] = {}
        self.delivered: list[str] = []
        self.rejected: list[tuple[str, object]] = []
        self.requests: list[contract.Request] = []
        self.connects: list[tuple[bool, str]] = []
        self.disconnects: list[str] = []
        self.lock = threading.Lock()
        self.uplink = Uplink(
            cfg,
            on_delivered=self._delivered,
            on_rejected=self._rejected,
            on_connected=self._connected,
            on_disconnected=self.disconnects.append,
            on_request=self.requests.append,
            **kw,
        )

    def add(self, ref: str, msg: dict) -> bool:
        payload = contract.encode(msg)
        with self.lock:
            self.pending[ref] = payload
        return self.uplink.publish_event(ref, self.uplink.event_topic, payload)

    def reoffer(self) -> None:
        with self.lock:
            items = list(self.pending.items())
        for ref, payload in items:
            self.uplink.publish_event(ref, self.uplink.event_topic, payload)

    def _connected(self, session_present: bool, protocol: str) -> None:
        self.reoffer()
        self.connects.append((session_present, protocol))  # after: wait_connected's signal

    def wait_connected(self) -> None:
        """Until on_connected has run, re-offer included: it runs on the uplink's event loop a
        moment after `uplink.connected` turns true, so an event added in between would be sent
        twice (harmless for the contract, but these tests count deliveries)."""
        wait_until(lambda: self.connects and self.uplink.connected, what="connect")

    def _delivered(self, ref: str) -> None:
        with self.lock:
            self.pending.pop(ref, None)
            self.delivered.append(ref)

    def _rejected(self, ref: str, why) -> None:
        self.rejected.append((ref, why))

    def __enter__(self) -> Hub:
        self.uplink.start()
        return self

    def __exit__(self, *exc) -> None:
        self.uplink.close()


class Client:
    """A plain paho v5 client (the platform, or a hub acting by hand) recording what it gets."""

    def __init__(
        self,
        broker: Broker,
        cn: str = "platform",
        subscribe=(f"{contract.PREFIX}/#",),
        persistent: bool = True,
        files=None,
        client_id: str | None = None,
    ):
        self.messages: list[mqtt.MQTTMessage] = []
        self.acks: dict[int, int] = {}
        self.connected = threading.Event()
        self.subscribe_to = subscribe
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or cn, protocol=mqtt.MQTTv5
        )
        f = files or broker.tls(cn)
        self.c.tls_set(ca_certs=f.ca, certfile=f.cert, keyfile=f.key)
        self.c.reconnect_delay_set(0.05, 0.3)  # type: ignore[arg-type]
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.append(m)
        self.c.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc.value)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600 if persistent else 0
        self.c.connect_async(
            broker.host, broker.port, 5, clean_start=not persistent, properties=props
        )
        self.c.loop_start()

    def _on_connect(self, c, u, flags, rc, p) -> None:
        if not rc.is_failure:
            for t in self.subscribe_to:
                c.subscribe(t, qos=1)
            self.connected.set()

    def wait_ready(self) -> Client:
        assert self.connected.wait(5), "client did not connect"
        time.sleep(0.1)  # SUBACK
        return self

    def on(self, suffix: str) -> list[mqtt.MQTTMessage]:
        return [m for m in list(self.messages) if m.topic.endswith(suffix)]

    def refs(self) -> list[str]:
        return [json.loads(m.payload)["ref"] for m in self.on("/event")]

    def publish(self, topic: str, payload, retain: bool = False) -> int:
        return self.c.publish(topic, payload, qos=1, retain=retain).mid

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def schema_for(topic: str) -> str:
    parts = topic.split("/")
    if parts[-1] in ("event", "state", "availability"):
        return parts[-1]
    return f"{parts[-2]}-{parts[-1]}"


def check_all(schemas, messages) -> None:
    for m in messages:
        if m.payload:
            schemas.check(schema_for(m.topic), json.loads(m.payload))
