"""The county platform's side, as an MQTT client: what the demo's platform console and the
rig watch.

    p = Platform(host, port, tls=broker.tls("platform"), county="sim-county").wait_connected()
    p.events[ref], p.arrived[ref]        # first copy of each event, monotonic arrival time
    p.duplicates                         # copies beyond the first (deduplicate on ref)
    p.availability["0000a1b2"]           # True / False, from the retained availability
    p.request("ack", {"ref": ref, "operator": "op-1"}, hub="hub-demo")

A persistent MQTT v5 session (clean_start false) with the platform's client certificate, as
docs/mqtt.md asks of a consumer; `on_event(msg, arrived)` lets the demo print as they come.
"""

from __future__ import annotations

import itertools
import json
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Platform:
    def __init__(self, host: str, port: int, *, county: str, tls=None, cn: str = "platform",
                 on_event=None, on_response=None):
        self.base = f"carebeacon/v1/{county}"
        self.on_event, self.on_response = on_event, on_response
        self.lock = threading.Lock()
        self.events: dict[str, dict] = {}
        self.arrived: dict[str, float] = {}
        self.arrivals: list[str] = []
        self.availability: dict[str, bool] = {}
        self.states: list[dict] = []
        self.responses: list[tuple[str, dict]] = []
        self.subscribed = threading.Event()
        self._tx = itertools.count(1)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cn, protocol=mqtt.MQTTv5)
        if tls is not None:
            c.tls_set(ca_certs=tls.ca, certfile=tls.cert, keyfile=tls.key)
        c.reconnect_delay_set(0.05, 1.0)
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
            c.subscribe([(f"{self.base}/{t}", 1) for t in
                         ("+/event", "+/state", "+/device/+/availability", "+/response/+")])

    def _subbed(self, *args) -> None:
        self.subscribed.set()

    def _msg(self, c, userdata, m) -> None:
        now = time.monotonic()
        try:
            msg = json.loads(m.payload)
        except ValueError:
            return
        parts = m.topic.split("/")
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

    @property
    def duplicates(self) -> int:
        with self.lock:
            return len(self.arrivals) - len(set(self.arrivals))

    def snapshot(self) -> list[tuple[str, dict, float]]:
        with self.lock:
            return [(r, e, self.arrived[r]) for r, e in self.events.items()]

    def request(self, kind: str, body: dict, *, hub: str) -> str:
        """Publish an operator request; returns its transaction id (answers in .responses)."""
        tx = f"tx-{next(self._tx)}"
        payload = json.dumps({"v": 1, "transaction": tx, **body})
        self.c.publish(f"{self.base}/{hub}/request/{kind}", payload, qos=1).wait_for_publish(5)
        return tx

    def response(self, tx: str) -> dict | None:
        with self.lock:
            return next((m for _k, m in self.responses if m.get("transaction") == tx), None)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
