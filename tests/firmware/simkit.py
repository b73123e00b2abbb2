"""Helpers for the firmware tests: a device on the simulated medium with a hub double.

    rig = Rig("button")                     # board, config, world, hub, platform, device
    rig.press(at_ms=5000, hold_ms=200)      # scripted button (absolute virtual ms)
    rig.run(60_000)
    rig.frames(T_SOS)                       # frames the hub heard, of one type
    rig.patterns()                          # feedback patterns played, by name

Forger is a medium wrapper that answers every advert with forged or replayed
acknowledgements before the real hub does.
"""

from __future__ import annotations

from pathlib import Path

from firmware import board as boards, config as configs
from firmware.apps.bracelet import BraceletApp
from firmware.apps.button import ButtonApp
from firmware.apps.pir import PirApp
from firmware.feedback import NAMES
from firmware.hal import IN_BUTTON, IN_PIR
from firmware.hal.sim import SimPlatform
from firmware.hal.simhub import LoopbackHub, seqs_unique
from firmware.hal.simworld import World
from shared.frame import ACK_DELIVERED, ACK_LEN, ACK_STORED, T_ACTIVITY, T_HEARTBEAT, Codec

REPO = Path(__file__).resolve().parents[2]
BOARDS = {
    "button": "esp32c3-supermini-button",
    "pir": "esp32c3-supermini-pir-am312",
    "bracelet": "m5stickc-plus2-bracelet",
}
APPS = {"button": ButtonApp, "pir": PirApp, "bracelet": BraceletApp}
KEY = "00112233445566778899aabbccddeeff"
OTHER_KEY = "ffeeddccbbaa99887766554433221100"
SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN


def load_board(name: str) -> boards.Board:
    return boards.load(str(REPO / "boards" / (name + ".json")))


def make_cfg(kind: str, board: str, device_id: int = 4242, **kw) -> configs.Config:
    d = {"device_id": device_id, "key": KEY, "kind": kind, "board": board}
    d.update(kw)
    return configs.parse(d, "/config.json", repr(sorted(d.items())))


class Rig:
    def __init__(self, kind="button", board=None, hub=None, medium=None, power_on=True,
                 device_id=4242, imu=None, **cfg_kw):
        self.kind = kind
        self.board = load_board(board or BOARDS[kind])
        self.cfg = make_cfg(kind, self.board.name, device_id, **cfg_kw)
        self.hub = hub if hub is not None else LoopbackHub()
        self.hub.register(self.cfg)
        self.world = World(medium if medium is not None else self.hub)
        self.plat = SimPlatform(self.board, self.cfg, APPS[kind], kind)
        if imu is not None:
            self.plat.imu_fn = imu
        self.dev = self.world.add(self.plat, power_on=power_on)

    @property
    def now(self) -> int:
        return self.world.now

    def run(self, ms: int) -> None:
        self.world.run_for(ms)

    def run_until(self, t: int) -> None:
        self.world.run_until(t)

    def press(self, at_ms: int, hold_ms: int = 200, i: int = IN_BUTTON) -> None:
        self.plat.inputs[i].pulse(at_ms, hold_ms)

    def motion(self, at_ms: int, high_ms: int = 2000) -> None:
        self.plat.inputs[IN_PIR].pulse(at_ms, high_ms)

    def frames(self, mtype=None, since=0):
        return [f for t, _n, f in self.hub.frames
                if (mtype is None or f.mtype == mtype) and t >= since]

    def frame_times(self, mtype):
        return [t for t, n, f in self.hub.frames if f.mtype == mtype]

    def messages(self, mtype=None):
        """Distinct messages heard (one per sequence number), in order."""
        seen, out = set(), []
        for f in self.frames(mtype):
            if f.seq not in seen:
                seen.add(f.seq)
                out.append(f)
        return out

    def patterns(self, since=0):
        return [NAMES[v] for t, what, v in self.plat.traces if what == "pattern" and t >= since]

    def unique(self) -> str:
        return seqs_unique(self.hub.frames)

    def app(self):
        return self.dev.app


class Forger:
    """A medium in front of the real hub: every advert first gets forged acknowledgements.

    kinds: "key" (wrong key), "device" (made for another device id with the same key),
    "replay" (a genuine acknowledgement recorded earlier, for another number),
    "short" (19 bytes), "flip" (genuine tag over a bad status byte is impossible:
    a flipped byte breaks the tag), "type" (a genuine DELIVERED made for another frame
    under the same number: a HEARTBEAT's, or an ACTIVITY's for a HEARTBEAT: a number
    reused after a power loss), "right" (a genuine DELIVERED for the frame itself).
    """

    def __init__(self, hub: LoopbackHub, device_id: int,
                 kinds=("key", "device", "replay", "short")):
        self.hub = hub
        self.kinds = kinds
        self.device_id = device_id
        self.wrong_key = Codec(device_id, bytes.fromhex(OTHER_KEY))
        self.other_dev = Codec(device_id + 1, bytes.fromhex(KEY))
        self.genuine = Codec(device_id, bytes.fromhex(KEY))
        self.writes = 0
        self.active = True  # a forger that keeps connecting also jams the real hub (DoS)
        self._queue = []

    def advertise(self, device, adv, connectable):
        from shared.frame import frame_from_adv

        self.hub.advertise(device, adv, connectable)
        if not self.active:
            return
        f = self.genuine.verify(frame_from_adv(adv))
        # a forger is fast, not instant
        self._queue.append((device.plat.now + 100, device, f.seq, f.mtype))

    def stop(self, device):
        self.hub.stop(device)

    def _forge(self, kind, seq, mtype):
        buf = bytearray(ACK_LEN)
        if kind == "key":
            return bytes(self.wrong_key.encode_ack(buf, seq, mtype, 3))
        if kind == "device":
            return bytes(self.other_dev.encode_ack(buf, seq, mtype, 3))
        if kind == "replay":
            return bytes(self.genuine.encode_ack(buf, seq + 1000, mtype, 3))
        if kind == "flip":
            b = bytearray(self.genuine.encode_ack(buf, seq, mtype, ACK_STORED))
            b[5] = 3  # STORED -> HELP without the key: the tag no longer matches
            return bytes(b)
        if kind == "type":
            other = T_HEARTBEAT if mtype != T_HEARTBEAT else T_ACTIVITY
            return bytes(self.genuine.encode_ack(buf, seq, other, ACK_DELIVERED))
        if kind == "right":
            return bytes(self.genuine.encode_ack(buf, seq, mtype, ACK_DELIVERED))
        return bytes(self.genuine.encode_ack(buf, seq, mtype, 3))[:19]

    def poll(self, now_ms):
        while self._queue and self._queue[0][0] <= now_ms:
            _t, device, seq, mtype = self._queue.pop(0)
            if device.radio.connect():
                for k in self.kinds:
                    device.radio.deliver_write(self._forge(k, seq, mtype))
                    self.writes += 1
                device.radio.disconnect()
        t = self.hub.poll(now_ms)
        if self._queue and (t is None or self._queue[0][0] < t):
            t = self._queue[0][0]
        return t


class _NoListener:
    def on_freed(self, seq, mtype, status):
        pass


def bare_outbox(device_id=1):
    """An Outbox on its own, no app around it (for tests of its rules)."""
    from firmware.apps.outbox import Outbox

    cfg = configs.Config()  # the firmware's defaults
    cfg.device_id = device_id
    return Outbox(cfg, _NoListener())

