"""A whole simulated home around the REAL hub process, for the end-to-end tests and the bench.

    home = Home(broker, tmp_path)     the air (tests/hub/e2e_air.py), the platform consumer, the
                                      hub's config, and the hub started as its own process
    home.dev[0xA1B2].send()           a button press: an SOS on the air, retried until HELP
    home.platform.wait_event(ref)     the county platform's view, deduplicated on `ref`
    home.hub.kill9(); home.hub.start()

    HubProcess   writes hub.toml + secrets.toml (0600) pointing at the broker with the hub's
                 client certificate (mqtts, mutual TLS), runs `python -m hub -c hub.toml run`
                 with DBUS_SYSTEM_BUS_ADDRESS set to the air's private bus
    Platform     an MQTT v5 client with the platform certificate and a persistent session,
                 subscribed to carebeacon/v1/<county>/+/event (+ state, responses); dedups on
                 `ref`, counts raw duplicates, publishes operator requests
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from e2e_air import HUB, Air, wait_for
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hil.sim.broker import Broker

REPO = Path(__file__).resolve().parents[2]
COUNTY = "test-county"


class Platform:
    """The platform's consumer: a persistent MQTT v5 session with a platform certificate."""

    def __init__(self, broker: Broker, cn: str = "platform", county: str = COUNTY,
                 topics: tuple[str, ...] = ("+/event", "+/state", "+/response/+")):
        self.base = f"carebeacon/v1/{county}"
        self.topics = topics
        self.lock = threading.Lock()
        self.events: dict[str, dict] = {}  # ref -> first copy
        self.arrivals: list[str] = []  # every copy's ref, in arrival order
        self.states: list[dict] = []
        self.responses: list[tuple[str, dict]] = []  # (kind from the topic, message)
        self.bad: list[tuple[str, bytes]] = []  # payloads that were not JSON
        self.subscribed = threading.Event()
        files = broker.tls(cn)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cn, protocol=mqtt.MQTTv5)
        c.tls_set(ca_certs=files.ca, certfile=files.cert, keyfile=files.key)
        c.reconnect_delay_set(0.05, 0.5)
        c.on_connect, c.on_subscribe, c.on_message = self._conn, self._subbed, self._msg
        c.on_disconnect = lambda *a: self.subscribed.clear()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect_async(broker.host, broker.port, 30, clean_start=False, properties=props)
        c.loop_start()
        self.c = c

    def wait_connected(self, timeout: float = 10.0) -> Platform:
        wait_for(self.subscribed.is_set, timeout, "the platform consumer's subscription")
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
        try:
            msg = json.loads(m.payload)
        except ValueError:
            with self.lock:
                self.bad.append((m.topic, m.payload))
            return
        parts = m.topic.split("/")
        with self.lock:
            if parts[4] == "event":
                self.arrivals.append(msg["ref"])
                self.events.setdefault(msg["ref"], msg)
            elif parts[4] == "state":
                self.states.append(msg)
            elif parts[4] == "response":
                self.responses.append((parts[5], msg))

    @property
    def duplicates(self) -> int:
        with self.lock:
            return len(self.arrivals) - len(set(self.arrivals))

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

    def request(self, kind: str, body: dict | bytes | str, hub: str = HUB,
                timeout: float = 10.0) -> dict:
        """Publish a request and return the next response (its topic's kind as `_kind`)."""
        return self.requests(kind, [body], hub, timeout)[0]

    def requests(self, kind: str, bodies: list, hub: str = HUB,
                 timeout: float = 10.0) -> list[dict]:
        """Publish requests back to back; return the next len(bodies) responses, in order.
        The hub answers each exactly once, in order (one connection, one event loop); only
        one caller at a time."""
        with self.lock:
            n = len(self.responses)
        infos = [self.c.publish(f"{self.base}/{hub}/request/{kind}",
                                json.dumps(b) if isinstance(b, dict) else b, qos=1)
                 for b in bodies]
        for info in infos:
            info.wait_for_publish(5)
        wait_for(lambda: len(self.responses) >= n + len(bodies), timeout,
                 f"{len(bodies)} responses to request/{kind}")
        with self.lock:
            return [{"_kind": k, **m} for k, m in self.responses[n:n + len(bodies)]]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def retained(broker: Broker, topic: str, cn: str = "platform-2", timeout: float = 5.0) -> dict:
    """What a client subscribing now gets as the retained message of `topic`."""
    got: list[bytes] = []
    files = broker.tls(cn)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cn, protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=files.ca, certfile=files.cert, keyfile=files.key)
    c.on_connect = lambda cl, *a: cl.subscribe(topic, 1)
    c.on_message = lambda cl, u, m: got.append(m.payload) if m.retain else None
    c.connect(broker.host, broker.port, 30, clean_start=True)
    c.loop_start()
    try:
        wait_for(lambda: got, timeout, f"the retained message on {topic}")
    finally:
        c.disconnect()
        c.loop_stop()
    return json.loads(got[0])


@dataclass(frozen=True)
class DeviceSpec:
    id: int
    key: bytes
    kind: str = "button"
    room: str = "bedroom"
    location: str = "by the bed"


class HubProcess:
    """`python -m hub -c hub.toml run`, the double as its BlueZ, mosquitto as its platform."""

    def __init__(self, workdir: Path, broker: Broker, air: Air, devices: list[DeviceSpec],
                 *, hub_id: str = HUB):
        self.dir, self.air, self.hub_id = Path(workdir), air, hub_id
        self.dir.mkdir(parents=True, exist_ok=True)
        f = broker.tls(hub_id)
        lines = [
            "[hub]", f'id = "{hub_id}"', f'county = "{broker.county}"', 'household = "hh-e2e"',
            'data_dir = "data"',
            "[platform]", f'url = "mqtts://{broker.host}:{broker.port}"',
            f'ca_file = "{f.ca}"', f'cert_file = "{f.cert}"', f'key_file = "{f.key}"',
            "keepalive_s = 30", "session_expiry_s = 3600",
            "[radio]", 'scanning = "active"', "ack_connect_timeout_s = 5",
        ]
        for d in devices:
            lines += ["[[devices]]", f'id = "{d.id:08x}"', f'kind = "{d.kind}"',
                      f'room = "{d.room}"', f'location = "{d.location}"']
        self.config = self.dir / "hub.toml"
        self.config.write_text("\n".join(lines) + "\n")
        fd = os.open(self.dir / "secrets.toml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("[keys]\n" + "".join(f'"{d.id:08x}" = "{d.key.hex()}"\n' for d in devices))
        self.data = self.dir / "data"
        self.log_path = self.dir / "hub.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.air.bus.address,
                "PYTHONUNBUFFERED": "1"}

    def start(self, ready: bool = True, timeout: float = 15.0) -> HubProcess:
        assert not self.alive
        with open(self.log_path, "a") as log:
            log.write(f"---- start {self.starts} ----\n")
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "-c", str(self.config), "run"], cwd=REPO,
                env=self.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        if ready:
            self.wait_ready(timeout)
        return self

    def status_file(self) -> dict | None:
        """This process's last status.json (written every 2 s), None before its first."""
        try:
            st = json.loads((self.data / "status.json").read_text())
        except (OSError, ValueError):
            return None
        return st if self.proc and st.get("pid") == self.proc.pid else None

    def wait_status(self, pred, timeout: float = 10.0, what: str = "a hub status") -> dict:
        def ok():
            assert self.alive, f"hub exited ({self.proc.returncode}):\n{self.log_tail()}"
            st = self.status_file()
            return st if st and pred(st) else None
        return wait_for(ok, timeout, what, 0.05)

    def wait_ready(self, timeout: float = 15.0) -> dict:
        return self.wait_status(lambda st: st["radio"]["status"] == "ok", timeout,
                                "the hub to scan")

    def cli(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hub", "-c", str(self.config), *args],
                              cwd=REPO, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (orderly shutdown); the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def log_tail(self, n: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def default_devices() -> list[DeviceSpec]:
    return [DeviceSpec(0xA1B2, os.urandom(16)),
            DeviceSpec(0xC3D4, os.urandom(16), kind="pir", room="hall", location="ceiling"),
            DeviceSpec(0xE5F6, os.urandom(16), kind="bracelet", room="", location="left wrist")]


class Home:
    """Air + platform + hub process; close() ends them (the hub with SIGTERM) and prints the
    hub's log (pytest shows it for a failed test)."""

    def __init__(self, broker: Broker, workdir: Path, devices: list[DeviceSpec] | None = None,
                 *, start: bool = True, platform: bool = True, **air_options):
        self.broker = broker
        self.specs = devices if devices is not None else default_devices()
        self.air = Air(**air_options)
        self.platform = (Platform(broker, county=broker.county).wait_connected() if platform
                         else None)
        self.hub = HubProcess(workdir, broker, self.air, self.specs)
        self.dev = {s.id: self.air.device(s.id, s.key) for s in self.specs}
        if start:
            self.start_hub()

    def start_hub(self, online: bool = True, timeout: float = 15.0) -> None:
        """Start the hub process; wait until it scans and, with `online`, until the platform
        saw its state "connected" (published after its request subscription: requests sent
        from then on reach it)."""
        n = len(self.platform.states) if self.platform else 0
        self.hub.start(timeout=timeout)
        if online and self.platform:
            self.platform.wait_state(lambda s: s["reason"] == "connected", timeout,
                                     "the hub online at the platform", after=n)

    def close(self) -> None:
        try:
            code = self.hub.stop()
            print(f"hub exit code {code}; log tail:\n{self.hub.log_tail()}")
        finally:
            if self.platform:
                self.platform.close()
            self.air.close()
