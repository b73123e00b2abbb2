"""hub/uplink.py against a real mosquitto (tests/broker.py): mutual TLS, ACL, outages, will,
requests, protocol fallback, threading."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker import Broker
from hub import contract
from hub.uplink import Uplink, UplinkConfig

pytestmark = pytest.mark.timeout(30)
REPO = Path(__file__).resolve().parents[2]
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


# ----- security ---------------------------------------------------------------------------------
def test_hub_confined_to_its_subtree(broker, schemas):
    platform = Client(broker).wait_ready()
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        own = hub.add(*event(1))
        other = event(2, hub_id="hub-b")
        assert own
        hub.pending[other[0]] = contract.encode(other[1])
        hub.uplink.publish_event(other[0], f"{P}/hub-b/event", contract.encode(other[1]))
        wait_until(lambda: hub.delivered and hub.rejected, what="PUBACKs")
        assert hub.delivered == [event(1)[0]]
        ((ref, why),) = hub.rejected
        assert ref == other[0] and why.code == 0x87 and "authori" in why.name.lower()
        wait_until(lambda: platform.refs() == [event(1)[0]], what="platform event")
        assert (
            other[0] not in hub.delivered and other[0] in hub.pending
        )  # stays pending: hub raises a fault
    # By hand, with hub-a's certificate: another hub's requests, or responses: nothing arrives.
    spy = Client(
        broker,
        "hub-a",
        subscribe=(f"{P}/hub-b/request/+", f"{P}/+/response/#", "#"),
        persistent=False,
    ).wait_ready()
    platform.publish(f"{P}/hub-b/request/list_devices", b'{"transaction":"t"}')
    platform.publish(f"{P}/hub-a/response/ack", b"{}")
    mid = spy.publish(
        f"{P}/hub-a/request/ack", b'{"transaction":"forged","ref":"hub-a:1a2b3c4d:1"}'
    )
    wait_until(lambda: mid in spy.acks, what="spy PUBACK")
    assert spy.acks[mid] == 0x87  # a hub cannot forge requests, not even to itself
    time.sleep(0.3)
    assert spy.messages == []
    check_all(schemas, platform.on("/event") + platform.on("/state"))  # what the hub sent
    spy.close()
    platform.close()


@pytest.mark.parametrize("case", ["other_ca", "no_certificate"])
def test_bad_client_certificate_refused(broker, case):
    f = broker.rogue if case == "other_ca" else broker.tls("hub-a")
    cfg = config(broker, files=f)
    if case == "no_certificate":
        cfg.cert_file = cfg.key_file = None
    with Hub(cfg) as hub:
        time.sleep(1.0)  # several attempts at 0.05..0.3 s
        assert hub.connects == [] and not hub.uplink.connected
        assert not hub.add(*event(1))
    assert " as hub-a " not in broker.log()  # mosquitto never accepted the client


def test_client_id_cannot_take_over_another_hub(broker):
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        intruder = Client(
            broker, "hub-b", subscribe=(), persistent=False, client_id="hub-a"
        ).wait_ready()
        time.sleep(0.3)
        assert (
            hub.disconnects == [] and hub.uplink.connected
        )  # use_username_as_clientid: it became "hub-b"
        intruder.close()


# ----- delivery ---------------------------------------------------------------------------------
def test_delivered_only_on_puback(broker, schemas):
    platform = Client(broker).wait_ready()
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        broker.pause()  # the TCP connection stays up; nothing is acknowledged
        try:
            assert hub.add(*event(1))  # sent on the wire...
            time.sleep(0.4)
            assert hub.delivered == [] and list(hub.pending) == [
                event(1)[0]
            ]  # ...but not delivered
        finally:
            broker.resume()
        wait_until(lambda: hub.delivered == [event(1)[0]], what="PUBACK after resume")
        refs = [hub.add(*event(n)) for n in range(2, 102)]
        assert all(refs)
        wait_until(lambda: len(hub.delivered) == 101, what="100 PUBACKs")
        wait_until(lambda: len(platform.refs()) == 101, what="platform")
        # one connection, one device: the platform sees them in publish order
        assert [contract.parse_ref(r)[2] for r in platform.refs()] == list(range(1, 102))
        assert hub.uplink.stats["delivered"] >= 101 and hub.rejected == []
    check_all(schemas, platform.messages)
    platform.close()


def test_no_matching_subscribers_is_not_delivery(broker):
    with Hub(
        config(broker)
    ) as hub:  # nobody subscribed: mosquitto answers PUBACK 0x10 and drops it
        hub.wait_connected()
        hub.add(*event(1))
        wait_until(lambda: hub.rejected, what="PUBACK")
        assert hub.rejected[0][1].code == 0x10 and hub.delivered == [] and hub.pending
        platform = Client(broker).wait_ready()
        hub.reoffer()  # the hub retries pending events (after a fault / on a timer)
        wait_until(lambda: hub.delivered == [event(1)[0]], what="delivery once subscribed")
        platform.close()
    with Hub(config(broker, "hub-b", require_subscriber=False)) as lax:
        lax.wait_connected()
        lax.add(*event(1, "hub-b"))
        wait_until(lambda: lax.delivered, what="PUBACK")


def test_broker_down_at_start(broker, caplog):
    platform = Client(
        broker
    ).wait_ready()  # a persistent session, kept by the broker while the platform is away
    platform.close()
    broker.stop()
    caplog.set_level(logging.DEBUG, logger="carebeacon.uplink")
    with Hub(config(broker)) as hub:
        sent = [hub.add(*event(n)) for n in range(1, 21)]
        assert not any(sent)  # not connected: nothing sent, everything pending
        time.sleep(0.3)
        broker.start()
        wait_until(lambda: not hub.pending, what="all delivered after the broker came up")
        assert hub.connects and hub.rejected == []
    # The outage is logged once with its reason, and its end once; each retry only at DEBUG
    # (paho's own "Client is not connected" ERROR per retry included).
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 2, loud
    assert "unreachable: [Errno 111] Connection refused" in loud[0]
    assert "reachable again after" in loud[1] and "attempts failed: " in loud[1]
    retries = [r for r in caplog.records if "still unreachable" in r.getMessage()]
    assert retries and all(r.levelno == logging.DEBUG for r in retries)
    platform = Client(broker).wait_ready()
    wait_until(lambda: len(set(platform.refs())) == 20, what="queued events reach the platform")
    platform.close()


def test_outage_mid_stream_exactly_once_after_dedup(broker, schemas, caplog):
    caplog.set_level(logging.DEBUG, logger="carebeacon.uplink")
    platform = Client(broker).wait_ready()
    n = 300
    with Hub(config(broker)) as hub:
        hub.wait_connected()

        def produce():
            for i in range(1, n + 1):
                hub.add(*event(i))
                time.sleep(0.002)

        producer = threading.Thread(target=produce)
        producer.start()
        wait_until(lambda: len(hub.delivered) >= 80, what="first deliveries")
        broker.stop()
        time.sleep(0.3)
        broker.start()
        producer.join()
        wait_until(lambda: not hub.pending, timeout=15, what="everything delivered")
        assert len(hub.disconnects) >= 1 and len(hub.connects) >= 2
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    lost = sum("lost the platform broker" in m for m in loud)  # once per outage, however
    assert lost >= 1 and sum("reachable again" in m for m in loud) == lost, loud  # many retries
    assert not any(
        r.name == "carebeacon.uplink.paho" and r.levelno >= logging.WARNING for r in caplog.records
    )  # its per-retry "Client is not connected"
    want = {contract.make_ref("hub-a", DEV, i) for i in range(1, n + 1)}
    wait_until(lambda: set(platform.refs()) == want, timeout=10, what="platform has every ref")
    raw = platform.refs()
    dupes = len(raw) - len(set(raw))
    print(f"outage: {len(raw)} raw deliveries, {dupes} duplicates, {len(want)} unique")
    assert len(set(raw)) == n and dupes >= 0
    check_all(schemas, platform.messages[:50])
    platform.close()


# ----- state, will, availability ----------------------------------------------------------------
HUB_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from hub.uplink import Uplink, UplinkConfig
u = Uplink(UplinkConfig(**{cfg!r}), on_connected=lambda sp, p: print("connected", flush=True))
u.start()
time.sleep(60)
"""


def test_last_will_when_hub_dies(broker, schemas):
    cfg = config(broker, "hub-b").__dict__
    proc = subprocess.Popen(
        [sys.executable, "-c", HUB_SCRIPT.format(repo=str(REPO), cfg=cfg)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "connected"
        platform = Client(broker, subscribe=(f"{P}/hub-b/state",)).wait_ready()
        wait_until(lambda: platform.on("/state"), what="retained online state")
        assert json.loads(platform.on("/state")[0].payload)["state"] == "online"
        proc.send_signal(
            signal.SIGKILL
        )  # the hub dies without DISCONNECT: the broker publishes the will
        wait_until(lambda: len(platform.on("/state")) == 2, what="last will")
        will = json.loads(platform.on("/state")[1].payload)
        assert will["state"] == "offline" and will["reason"] == "connection_lost"
        late = Client(
            broker, "platform-2", subscribe=(f"{P}/+/state",), persistent=False
        ).wait_ready()
        wait_until(lambda: late.on("/state"), what="retained will")
        assert (
            late.on("/state")[0].retain
            and json.loads(late.on("/state")[0].payload)["state"] == "offline"
        )
        check_all(schemas, platform.messages + late.messages)
        platform.close()
        late.close()
    finally:
        proc.kill()
        proc.wait()


def test_orderly_close_says_shutdown(broker):
    platform = Client(broker, subscribe=(f"{P}/hub-a/state",)).wait_ready()
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        hub.uplink.publish_state("degraded", "adapter resets: 3 in 10 min")
        wait_until(lambda: len(platform.on("/state")) == 2, what="state update")
    wait_until(lambda: len(platform.on("/state")) == 3, what="shutdown state")
    states = [json.loads(m.payload) for m in platform.on("/state")]
    assert [(s["state"], s["reason"]) for s in states] == [
        ("online", "connected"),
        ("online", "update"),
        ("offline", "shutdown"),
    ]
    assert states[1]["radio"] == {"status": "degraded", "detail": "adapter resets: 3 in 10 min"}
    time.sleep(0.2)
    assert len(platform.on("/state")) == 3  # a DISCONNECT discards the will
    platform.close()


def test_retained_availability_survives_and_is_republished(broker, schemas):
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        hub.uplink.publish_availability(DEV, True)
        hub.uplink.publish_availability(0x00000007, True)
        hub.uplink.publish_availability(0x00000007, False)
        hub.uplink.forget_device(0x00000007)
        time.sleep(0.2)
        broker.stop()  # graceful: retained messages are saved...
        for f in (broker.dir / "var").glob("*.db"):
            f.unlink()  # ...and lost, as on a broker without persistence: the hub republishes
        broker.start()
        wait_until(lambda: len(hub.connects) == 2, what="reconnect")
        time.sleep(0.2)
        late = Client(broker, subscribe=(f"{P}/hub-a/#",), persistent=False).wait_ready()
        wait_until(lambda: late.on("/availability") and late.on("/state"), what="retained messages")
        avail = [json.loads(m.payload) for m in late.on("/availability")]
        assert [(a["device"], a["state"]) for a in avail] == [("1a2b3c4d", "online")]
        assert json.loads(late.on("/state")[0].payload)["state"] == "online"
        check_all(schemas, late.messages)
        late.close()


# ----- requests ---------------------------------------------------------------------------------
def test_requests_and_responses(broker, schemas):
    platform = Client(broker, subscribe=(f"{P}/+/response/+",)).wait_ready()
    with Hub(config(broker)) as hub:
        hub.wait_connected()
        good = {
            "ack": {"transaction": "t1", "ref": "hub-a:1a2b3c4d:5", "operator": "desk 3"},
            "settings": {"transaction": 2, "settings": {"heartbeat_interval": 30}},
            "identify": {"transaction": "t3", "device": "1a2b3c4d"},
            "test": {"transaction": "t4", "device": "1a2b3c4d"},
            "list_devices": {"transaction": "t5"},
        }
        for kind, body in good.items():
            platform.publish(f"{P}/hub-a/request/{kind}", json.dumps(body))
        wait_until(lambda: len(hub.requests) == 5, what="requests")
        for req in hub.requests:
            data = None
            if req.kind == "list_devices":
                data = {
                    "devices": [
                        contract.device_entry(
                            contract.Device(DEV, "button", "bedside", "bedroom"), True
                        )
                    ]
                }
            hub.uplink.respond(
                req,
                contract.Result.OK if req.kind != "settings" else contract.Result.HOLD,
                data=data,
            )
        bad = [
            ("ack", b"{not json"),
            ("ack", b'{"ref":"hub-a:1a2b3c4d:5"}'),
            ("reboot", b'{"transaction":"x"}'),
            ("settings", b'{"transaction":"y","settings":{"heartbeat_interval":0}}'),
            ("ack", b'{"transaction":"z","ref":"hub-b:1a2b3c4d:5"}'),
            ("test", b'{"transaction":"w"}'),
            ("list_devices", b" " * 5000),
        ]
        for kind, payload in bad:
            platform.publish(f"{P}/hub-a/request/{kind}", payload)
        platform.publish(
            f"{P}/hub-a/request/ack", b'{"transaction":"r","ref":"hub-a:1a2b3c4d:9"}', retain=True
        )
        wait_until(lambda: len(platform.messages) == 12, what="12 responses")
        time.sleep(0.2)
        assert (
            len(hub.requests) == 6
        )  # the retained one was also delivered live (retain flag cleared)...
    with Hub(config(broker)) as again:  # ...but its retained replay on re-subscribe is ignored
        again.wait_connected()
        time.sleep(0.3)
        assert again.requests == []
    got = sorted(
        (
            str(json.loads(m.payload)["transaction"]),
            m.topic.rsplit("/", 1)[1],
            json.loads(m.payload)["result"],
        )
        for m in platform.messages
    )
    assert got == sorted(
        [
            ("t1", "ack", 0),
            ("2", "settings", 4),
            ("t3", "identify", 0),
            ("t4", "test", 0),
            ("t5", "list_devices", 0),
            ("None", "ack", 2),
            ("None", "ack", 7),
            ("x", "error", 5),
            ("y", "settings", 3),
            ("z", "ack", 3),
            ("w", "test", 7),
            ("None", "list_devices", 1),
        ]
    )
    check_all(schemas, platform.messages)
    platform.close()


# ----- transports, protocol versions, threading ------------------------------------------------
def test_unix_socket_with_mutual_tls(broker):
    platform = Client(broker).wait_ready()
    with Hub(config(broker, unix_socket=broker.socket_path)) as hub:
        hub.add(*event(1))
        wait_until(lambda: hub.delivered == [event(1)[0]], what="delivery over the Unix socket")
    platform.close()


def test_mqtt_311_configured(broker):
    """3.1.1 works (persistent session, delivery), but a PUBACK cannot say "refused": an ACL denial
    looks like a delivery. This is why v5 is the default and 3.1.1 only a fallback."""
    platform = Client(broker).wait_ready()
    with Hub(config(broker, protocol="3.1.1")) as hub:
        hub.add(*event(1))
        wait_until(lambda: hub.delivered == [event(1)[0]], what="delivery")
        assert hub.connects[0][1] == "3.1.1"
        forged = event(1, hub_id="hub-b")
        hub.uplink.publish_event(forged[0], f"{P}/hub-b/event", contract.encode(forged[1]))
        wait_until(lambda: len(hub.delivered) == 2, what="PUBACK")
        time.sleep(0.2)
        assert (
            forged[0] not in platform.refs() and hub.rejected == []
        )  # silently dropped by the broker
    platform.close()


class FakeV311Broker:
    """Just enough MQTT 3.1.1 to refuse v5 CONNECTs (CONNACK 0x01) and accept 3.1.1 ones."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connects: list[tuple[int, int, str]] = []  # (protocol level, connect flags, client id)
        self.published: list[str] = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self, conn):
        with conn:
            try:
                while not self.stop:
                    head = self._read(conn, 1)[0]
                    length, shift = 0, 0
                    while True:
                        b = self._read(conn, 1)[0]
                        length |= (b & 0x7F) << shift
                        shift += 7
                        if not b & 0x80:
                            break
                    body = self._read(conn, length)
                    kind = head & 0xF0
                    if kind == 0x10:  # CONNECT
                        name_len = struct.unpack("!H", body[:2])[0]
                        level, flags = body[2 + name_len], body[3 + name_len]
                        cid = ""
                        if level == 4:
                            cid_len = struct.unpack("!H", body[6 + name_len : 8 + name_len])[0]
                            cid = body[8 + name_len : 8 + name_len + cid_len].decode()
                        self.connects.append((level, flags, cid))
                        conn.sendall(bytes([0x20, 2, 0, 1 if level != 4 else 0]))
                        if level != 4:
                            return
                    elif kind == 0x30:  # PUBLISH
                        tlen = struct.unpack("!H", body[:2])[0]
                        self.published.append(body[2 : 2 + tlen].decode())
                        if head & 0x06:
                            conn.sendall(bytes([0x40, 2]) + body[2 + tlen : 4 + tlen])
                    elif kind == 0x80:  # SUBSCRIBE
                        conn.sendall(bytes([0x90, 3]) + body[:2] + b"\x01")
                    elif kind == 0xC0:  # PINGREQ
                        conn.sendall(b"\xd0\x00")
                    elif kind == 0xE0:
                        return
            except (EOFError, OSError):
                return

    def close(self):
        self.stop = True
        self.sock.close()


def test_falls_back_to_311_when_v5_refused():
    fake = FakeV311Broker()
    cfg = UplinkConfig(
        hub_id="hub-a",
        county=COUNTY,
        host="127.0.0.1",
        port=fake.port,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.2,
    )
    try:
        with Hub(cfg) as hub:
            wait_until(lambda: hub.connects, what="3.1.1 connection")
            assert hub.connects == [(False, "3.1.1")] and hub.uplink.stats["fallbacks"] == 1
            assert [c[0] for c in fake.connects] == [5, 4]
            level, flags, cid = fake.connects[1]
            assert cid == "hub-a"
            assert not flags & 0x02  # clean_session = False: a persistent session
            assert flags & 0x04 and flags & 0x20 and (flags >> 3) & 3 == 1  # will, retained, QoS 1
            hub.add(*event(1))
            wait_until(lambda: hub.delivered == [event(1)[0]], what="PUBACK")
            assert f"{P}/hub-a/state" in fake.published
    finally:
        fake.close()


def test_callbacks_run_on_the_asyncio_loop(broker):
    platform = Client(broker).wait_ready()

    async def main():
        loop = asyncio.get_running_loop()
        me = threading.get_ident()
        seen: list[tuple[str, int]] = []
        done = asyncio.Event()

        def delivered(ref):
            seen.append((ref, threading.get_ident()))
            done.set()

        def connected(session_present, protocol):
            seen.append(("connected", threading.get_ident()))
            ref, msg = event(1)
            assert uplink.publish_event(ref, uplink.event_topic, msg)

        uplink = Uplink(config(broker), on_delivered=delivered, on_connected=connected, loop=loop)
        uplink.start()
        try:
            await asyncio.wait_for(done.wait(), 5)
        finally:
            await loop.run_in_executor(None, uplink.close)
        assert [s[0] for s in seen] == ["connected", event(1)[0]]
        assert {s[1] for s in seen} == {me}

    asyncio.run(main())
    platform.close()


def test_broker_fixture_cleans_up():
    b = Broker(county=COUNTY)
    b.start()
    path, pid = b.dir, b._proc.pid
    b.close()
    assert not path.exists() and not b.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert Path(b.socket_path).exists() is False
