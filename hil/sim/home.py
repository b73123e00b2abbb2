"""A simulated home: rooms, the real firmware apps on simulated boards placed in them, and
scripted inputs.

    home = SimHome(Medium(Radio(seed=7)))
    home.add("button", "button", room="bedroom", device_id=0xA1B2)
    home.add("pir", "pir", room="living room", device_id=0xC3D4, summary_min=5)
    home.add("bracelet", "bracelet", room="living room", device_id=0xE5F6)
    home.press("button")                 # now; also double_press, triple_press, hold
    home.motion("pir"); home.fall("bracelet"); home.leave("bracelet"); home.come_back(...)
    home.power_cycle("button", off_ms=2000); home.set_battery("button", 2300)
    home.world.run_for(60_000)           # virtual time (or hil/sim/live.py: real time)

Each device is a firmware.hal.sim.SimPlatform booted by firmware.hal.simworld.SimDevice:
the apps in firmware/apps/ run unchanged (no second implementation of device logic); only
the hardware layer is simulated. Its radio is hil/sim/medium.py, where the device's room
sets the distance and walls to the hub. Keys come from a seeded generator: a run is
repeatable (simulated devices hold no secrets).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from firmware import board as boards, config as configs
from firmware.apps.bracelet import BraceletApp
from firmware.apps.button import ButtonApp
from firmware.apps.pir import PirApp
from firmware.feedback import NAMES
from firmware.hal import IN_BUTTON, IN_PIR
from firmware.hal.sim import SimPlatform
from firmware.hal.simworld import World
from hil.sim.hubconf import DeviceSpec
from hil.sim.imu import Wrist
from hil.sim.medium import Medium, address_of

REPO = Path(__file__).resolve().parents[2]
BOARDS = {"button": "esp32c3-supermini-button", "pir": "esp32c3-supermini-pir-am312",
          "bracelet": "m5stickc-plus2-bracelet"}
APPS = {"button": ButtonApp, "pir": PirApp, "bracelet": BraceletApp}
INPUT = {"button": IN_BUTTON, "pir": IN_PIR, "bracelet": IN_BUTTON}


@dataclass(frozen=True)
class Room:
    x: float  # metres, the hub at (0, 0)
    y: float
    walls: int  # interior walls between this room and the hub


# A two-bedroom flat, the hub on the hall's shelf.
ROOMS = {
    "hall": Room(1.0, 0.5, 0),
    "living room": Room(4.5, 1.5, 1),
    "kitchen": Room(3.0, -3.0, 1),
    "bedroom": Room(-4.0, 3.0, 2),
    "bathroom": Room(-2.5, -2.5, 2),
    "garden": Room(9.0, 6.0, 3),  # just in range, through the back wall
}
OUTSIDE = "outside"  # out of range: gone out


@dataclass
class SimDev:
    name: str
    kind: str
    spec: DeviceSpec
    plat: SimPlatform
    dev: object  # firmware.hal.simworld.SimDevice
    address: str
    room: str
    wrist: Wrist | None = None
    powered: bool = True


def load_board(name: str) -> boards.Board:
    return boards.load(str(REPO / "boards" / (name + ".json")))


class SimHome:
    def __init__(self, medium: Medium | None = None, rooms: dict[str, Room] | None = None,
                 seed: int = 1):
        self.medium = medium or Medium()
        self.rooms = dict(ROOMS if rooms is None else rooms)
        self.world = World(self.medium)
        self.medium.world = self.world
        self.rng = random.Random(seed)
        self.devs: dict[str, SimDev] = {}

    @property
    def now(self) -> int:
        return self.world.now

    # -- devices -----------------------------------------------------------------------------
    def add(self, name: str, kind: str, *, room: str, device_id: int, location: str = "",
            board: str | None = None, key: bytes | None = None, power_on: bool = True,
            heartbeat_min: int = 60, hub_room: str | None = None, **cfg) -> SimDev:
        """A device of `kind` in `room`, running the real firmware app. `hub_room`: the room
        the hub should list it in (default `room`; "" for a bracelet)."""
        b = load_board(board or BOARDS[kind])
        key = key if key is not None else self.rng.randbytes(16)
        d = {"device_id": device_id, "key": key.hex(), "kind": kind, "board": b.name,
             "heartbeat_min": heartbeat_min, **cfg}
        c = configs.parse(d, "/config.json", repr(sorted(d.items())))
        plat = SimPlatform(b, c, APPS[kind], name)
        wrist = None
        if kind == "bracelet":
            wrist = Wrist()
            plat.imu_fn = wrist
        if b.power == "battery":
            plat.battery_mv = 3100 if b.chemistry == "alkaline" else 4100
        dev = self.world.add(plat, power_on=False)
        address = address_of(device_id)
        self.medium.add(dev, address)
        spec = DeviceSpec(device_id, key, kind, room if hub_room is None else hub_room,
                          location, heartbeat_min)
        s = SimDev(name, kind, spec, plat, dev, address, room, wrist, powered=False)
        self.devs[name] = s
        self.move(name, room)
        if power_on:
            self.power_on(name)
        return s

    def specs(self) -> list[DeviceSpec]:
        return [s.spec for s in self.devs.values()]

    def by_id(self, device_id: int) -> SimDev | None:
        return next((s for s in self.devs.values() if s.spec.id == device_id), None)

    def move(self, name: str, room: str) -> None:
        """Carry a device (the bracelet, with its wearer) into `room`, or OUTSIDE."""
        s = self.devs[name]
        s.room = room
        r = self.rooms.get(room)
        if r is None:
            self.medium.place(s.dev, None)
        else:
            jitter = self.rng.uniform(-0.5, 0.5)
            self.medium.place(s.dev, max(0.5, math.hypot(r.x, r.y) + jitter), r.walls)

    # -- scripted inputs (at `at`, default now) -----------------------------------------------
    def _t(self, at: int | None) -> int:
        # 1 ms ahead: a waiting device wakes on an input CHANGE after now (simworld plans it)
        return self.now + 1 if at is None else max(at, self.now + 1)

    def press(self, name: str, hold_ms: int = 150, at: int | None = None) -> int:
        s, t = self.devs[name], self._t(at)
        s.plat.inputs[INPUT[s.kind]].pulse(t, hold_ms)
        return t

    def double_press(self, name: str, gap_ms: int = 250, at: int | None = None) -> int:
        """An accidental double press: two short presses `gap_ms` apart."""
        t = self._t(at)
        self.press(name, 120, t)
        self.press(name, 120, t + 120 + gap_ms)
        return t

    def triple_press(self, name: str, gap_ms: int = 800, at: int | None = None) -> int:
        """The weekly test gesture: three presses about a second apart."""
        t = self._t(at)
        for k in range(3):
            self.press(name, 150, t + k * (150 + gap_ms))
        return t

    def hold(self, name: str, ms: int = 3500, at: int | None = None) -> int:
        """A long hold: cancels an alarm (3 s); 30 s makes a stuck button."""
        return self.press(name, ms, at)

    def motion(self, name: str, high_ms: int = 2000, at: int | None = None) -> int:
        """Someone moves in front of a PIR: its output goes high (AM312: ~2 s)."""
        return self.press(name, high_ms, at)

    def fall(self, name: str, at: int | None = None) -> int:
        """The wearer falls: the impact `at` (default 500 ms from now), then lies still."""
        t = self._t(at) if at is not None else self.now + 500
        self.devs[name].wrist.fall(t)
        return t

    def get_up(self, name: str, at: int | None = None) -> None:
        self.devs[name].wrist.set(self._t(at), "active")

    def wear(self, name: str, mode: str, at: int | None = None) -> None:
        """The bracelet: "active", "rest" (asleep) or "table" (taken off)."""
        self.devs[name].wrist.set(self._t(at), mode)

    def leave(self, name: str) -> None:
        self.move(name, OUTSIDE)

    def come_back(self, name: str, room: str = "hall") -> None:
        self.move(name, room)

    def set_battery(self, name: str, mv: int) -> None:
        self.devs[name].plat.battery_mv = int(mv)

    # -- power ----------------------------------------------------------------------------------
    def power_on(self, name: str) -> None:
        s = self.devs[name]
        if not s.powered:
            s.powered = True
            s.dev.power_on(self.now)

    def power_off(self, name: str) -> None:
        s = self.devs[name]
        if s.powered:
            s.powered = False
            s.dev.power_loss()
            s.dev.next_at = None  # stays off until power_on()

    def power_cycle(self, name: str, off_ms: int = 2000) -> None:
        s = self.devs[name]
        s.dev.power_loss(off_ms)

    # -- what the elder sees and hears ------------------------------------------------------
    def patterns(self, name: str, since: int = 0) -> list[tuple[int, str]]:
        p = self.devs[name].plat
        return [(t, NAMES[v]) for t, what, v in p.traces if what == "pattern" and t >= since]

    def compact(self, keep_ms: int = 3_600_000) -> None:
        """Forget input changes more than 10 s old (devices look at now and later, a boot a
        few seconds back) and traces and outputs older than keep_ms: long runs stay fast."""
        before = self.now - keep_ms
        cut = self.now - 10_000  # a boot looks back at most 5 s (safe-boot window + hold)
        for s in self.devs.values():
            for sc in s.plat.inputs:
                if sc.changes and sc.changes[0][0] < cut:
                    sc.initial = sc.level(cut)
                    sc.changes = [c for c in sc.changes if c[0] > cut]
            p = s.plat
            if p.traces and p.traces[0][0] < before:
                p.traces = [x for x in p.traces if x[0] >= before][-5000:]
            del p.outputs[:-2000], p.log[:-2000]
            if s.wrist is not None:
                s.wrist.compact(cut)
