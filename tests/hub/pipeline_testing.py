"""The hub core with a recorder (test_pipeline*.py, test_inactivity_settings.py): frames from
real device codecs through the real store; the uplink is a recording stand-in (the daemon
test runs the real one against mosquitto), every published message checked against the
contract's JSON Schemas. The `home` fixture is in conftest.py."""

from __future__ import annotations

import json
import os

from hub.config import load
from hub.pipeline import HubCore
from hub.store import Store
from shared import frame as F

MIN = 60_000
HUB_TOML = """
[hub]
id = "hub-a"
county = "test-county"
household = "HH-7"
data_dir = "data"
[platform]
url = "mqtt://localhost:1883"
[inactivity]
prealarm_min = 10
[[devices]]
id = "0000a1b2"
kind = "button"
room = "bedroom"
location = "by the bed"
[[devices]]
id = "0000c3d4"
kind = "pir"
room = "living room"
heartbeat_min = 30
"""
KEYS = {0xA1B2: bytes(range(16)), 0xC3D4: bytes(range(16, 32))}


class FakeClock:
    def __init__(self):
        self.mono = 10_000
        self.wall = 1_760_000_000_000
        self.tod_s = 9 * 3600

    def mono_ms(self):
        return self.mono

    def wall_ms(self):
        return self.wall

    def local(self):
        return (self.tod_s + (self.mono - 10_000) // 1000) % 86400, 2, True

    def advance(self, ms):
        self.mono += ms
        self.wall += ms


class Recorder:
    """Stands in for hub.uplink.Uplink: records what the core asks it to send."""

    def __init__(self):
        self.connected = True
        self.events: list[tuple[str, dict]] = []
        self.availability: list[tuple[int, bool]] = []
        self.unpaired: dict[int, object] = {}  # device id -> its `confirmed` (the PUBACK's)
        self.states: list[str] = []
        self.responses: list[tuple] = []

    def publish_event(self, ref, topic, payload):
        if not self.connected:
            return False
        self.events.append((ref, json.loads(payload)))
        return True

    def publish_availability(self, device_id, online, last_seen=None):
        self.availability.append((device_id, online))

    def forget_device(self, device_id, confirmed=None):
        self.unpaired[device_id] = confirmed

    def publish_state(self, radio, detail=None):
        self.states.append(radio)

    def respond(self, req, result=0, *, text=None, data=None, error=None):
        self.responses.append((req.kind, req.transaction, int(result), text, data))


class Home:
    """A hub core plus the devices' side of the radio."""

    def __init__(self, tmp_path, schemas, toml=HUB_TOML, defer=None):
        (tmp_path / "hub.toml").write_text(toml)
        sec = tmp_path / "secrets.toml"
        sec.write_text("[keys]\n" + "".join(f'"{d:08x}" = "{k.hex()}"\n' for d, k in KEYS.items()))
        os.chmod(sec, 0o600)
        self.cfg = load(tmp_path / "hub.toml")
        self.cfg.data_dir.mkdir(exist_ok=True)
        self.schemas = schemas
        self.clock = FakeClock()
        self.pub = Recorder()
        self.acks: list[tuple[int, bytes, int]] = []
        self.codec = {d: F.Codec(d, k) for d, k in KEYS.items()}
        self.seq = {d: 0 for d in KEYS}
        # (device, seq) -> the type of the last genuine frame sent under that number: the one
        # a device's outbox holds, whose type it verifies acknowledgements of that number with
        self.types: dict[tuple[int, int], int] = {}
        self.defer = defer
        self.open()

    def open(self):
        self.store = Store(self.cfg.data_dir / "hub.db", hub_id=self.cfg.hub_id)
        self.core = HubCore(
            self.cfg,
            self.store,
            publisher=self.pub,
            clock=self.clock,
            acker=lambda d, addr, data, s, own=None: self.acks.append((d, data, s)),
            defer=self.defer,
        )
        on_frame = self.core.on_frame

        def heard(address, data, rssi):  # note the type of each genuine frame, as sent
            try:
                f = self.codec[F.peek_device_id(data)].verify(data)
                self.types[(f.device_id, f.seq)] = f.mtype
            except (F.FrameError, KeyError):
                pass
            return on_frame(address, data, rssi)

        self.core.on_frame = heard

    def restart(self):
        self.store.close()
        self.open()

    def send(self, dev, mtype, arg=0, age_ms=0, seq=None, key=None, attempt=0):
        if seq is None:
            self.seq[dev] += 1
            seq = self.seq[dev]
        codec = F.Codec(dev, key) if key else self.codec[dev]
        data = bytes(codec.encode(bytearray(24), seq, mtype, arg, age_ms, attempt))
        return self.core.on_frame(f"AA:BB:CC:00:{dev & 0xFF:02X}:01", data, -61), seq

    def verify_ack(self, dev, data, mtype=None):
        """The device's check of an ack: with the type of the last frame sent under the ack's
        number (unless `mtype` is given), as its outbox would."""
        if mtype is None:
            mtype = self.types[(dev, F.peek_ack_seq(data))]
        return self.codec[dev].verify_ack(data, mtype)

    def last_ack(self, dev):
        d, data, _ = [a for a in self.acks if a[0] == dev][-1]
        return self.verify_ack(dev, data)

    def published(self, type_=None):
        for _, msg in self.pub.events:
            self.schemas.check("event", msg)
        return [m for _, m in self.pub.events if type_ is None or m["type"] == type_]


def deliver_settings(home: Home, dev: int) -> dict[int, int]:
    """New frames until the device has heard every pending setting: what it heard (setting id
    -> value); then a tick (the supervisor follows a heartbeat the device now has)."""
    heard = {}
    while home.core.devices[dev].settings:
        home.send(dev, F.T_HEARTBEAT)
        ack = home.last_ack(dev)
        heard[ack.setting] = ack.value
        home.core.ack_written(dev, ack.setting, True, value=ack.value)
    home.core.tick()
    return heard


def advert(home: Home, dev: int, seq: int, mtype: int, arg=0, age_ms=0, attempt=0) -> bytes:
    """A device's advert payload as its own codec seals it (a recording replays these bytes)."""
    return bytes(home.codec[dev].encode(bytearray(24), seq, mtype, arg, age_ms, attempt))


def addressed(home: Home, own: bool = False) -> list[tuple]:
    """Record every acknowledgement as (device, address, seq, status), with `own`: and
    whether the core said it goes to the device's own address."""
    out: list[tuple] = []

    def acker(dev, address, data, setting, is_own=None):
        ack = home.verify_ack(dev, data)
        out.append((dev, address, ack.seq, ack.status) + ((is_own,) if own else ()))

    home.core.acker = acker
    return out
