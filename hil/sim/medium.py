"""The simulated air: BLE advertising, scanning and connections in a home.

`Medium` implements the firmware simulator's MEDIUM interface (firmware/hal/sim.py):

    medium.advertise(device, adv, connectable) / medium.stop(device) / medium.poll(now)

and turns a device's "advertise these 31 bytes" into advertising EVENTS on the air, each
heard by the hub's scanner or not, the way a BLE link behaves:

- timing: the first event after BLE comes up (the board's `ble_on_ms`, ~200 ms on a C3),
  then one event per advertising interval (the firmware's 20 ms for alarms, 100 ms for
  routine frames) plus the Core spec's pseudo-random advDelay of 0-10 ms;
- the scanner: it listens `scan_window_ms` out of every `scan_interval_ms` (BlueZ's
  discovery default is 11.25 / 11.25 ms: 100 %); an event outside the window is missed;
- propagation: RSSI from a log-distance path-loss model, `rssi_1m - 10 n log10(d)`, minus
  `wall_db` per interior wall between the device's room and the hub, plus Gaussian
  shadowing; the packet is lost with probability `loss` (interference) or by the
  receiver's sensitivity curve (a logistic around `sensitivity_dbm`);
- connections: a central asks to connect; the link comes up at the device's next
  connectable event the initiator hears (the device stops advertising, as NimBLE does),
  or the request times out. Writes and disconnects go to the device's radio.

Everything is decided by one seeded `random.Random`: a run is repeatable. Heard events go to
a SINK after `report_ms` (controller to host): the BlueZ double in real time
(hil/sim/bluez_sink.py, the real hub process behind bleak) or an in-process hub on the
virtual clock (hil/sim/hub_sink.py). A sink has `scanning` (bool) and
`heard(device, address, adv, rssi)`.

Devices appear and vanish: `place(device, distance_m, walls)`; `place(device, None)` is out
of range (nothing it sends is heard, the hub cannot connect).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Radio:
    """Radio timing and propagation; every default is a realistic value (docs/hil.md)."""

    scan_interval_ms: float = 11.25  # Linux DISCOV_LE_SCAN_INT (0x0012) while discovering
    scan_window_ms: float = 11.25  # DISCOV_LE_SCAN_WIN (0x0012): 100 % duty cycle
    adv_delay_ms: float = 10.0  # Core spec Vol 6 B 4.4.2.2.1: advDelay 0-10 ms per event
    ble_start_ms: int | None = None  # BLE bring-up before the first event; None: the board's
    report_ms: float = 1.0  # controller -> host (HCI) for one advertising report
    loss: float = 0.02  # per-event loss from interference (Wi-Fi coexistence, other BLE)
    rssi_1m: float = -59.0  # RSSI at 1 m of a 0 dBm chip antenna
    path_exp: float = 2.8  # indoor log-distance exponent (2.5-3.0 in homes)
    wall_db: float = 4.0  # one interior (plaster/brick) wall
    shadow_db: float = 3.0  # shadowing standard deviation
    sensitivity_dbm: float = -92.0  # where half the packets are lost (CYW43455-class receiver)
    conn_setup_ms: float = 3.0  # CONNECT_IND to the first connection event
    seed: int = 1


@dataclass
class _Dev:
    device: object
    address: str
    distance: float | None = 3.0
    walls: int = 0
    adv: bytes = b""
    connectable: bool = False
    interval_ms: float = 20.0
    gen: int = 0
    radio_on_seen: int = 0
    connect_cb: Callable[[bool], None] | None = None
    connect_token: int = 0
    heard_events: int = 0
    sent_events: int = 0
    rssi_seen: list[int] = field(default_factory=list)


def address_of(device_id: int) -> str:
    """A stable public address for a simulated device (D0:CB: + its id)."""
    return "D0:CB:" + ":".join("%02X" % b for b in device_id.to_bytes(4, "big"))


class Medium:
    def __init__(self, radio: Radio | None = None, sink=None):
        self.radio = radio or Radio()
        self.rng = random.Random(self.radio.seed)
        self.sink = sink
        self._scan_phase = self.rng.uniform(0, self.radio.scan_interval_ms)
        self._q: list[tuple[float, int, Callable[[], None]]] = []
        self._n = itertools.count()
        self._devs: dict[int, _Dev] = {}  # id(SimDevice) -> state
        self.by_address: dict[str, object] = {}
        self.observers: list[Callable] = []  # observer(device, adv, rssi) for every heard event
        self._in_poll = False
        self.world = None  # the World whose clock this air follows (SimHome sets it)
        self._t = 0.0  # time of the action running now, or of the last poll

    @property
    def now(self) -> float:
        """The current time: the running action's own time inside poll(), else the world's
        (which may have moved on without polling the air: World.run_until ends that way)."""
        w = self.world.now if self.world is not None and not self._in_poll else 0
        return max(self._t, w)

    @now.setter
    def now(self, t: float) -> None:
        self._t = t

    # -- the home's geometry ------------------------------------------------------------
    def add(self, device, address: str, distance_m: float | None = 3.0, walls: int = 0) -> None:
        self._devs[id(device)] = _Dev(device, address, distance_m, walls,
                                      radio_on_seen=device.plat.counts["radio_on"])
        self.by_address[address] = device

    def place(self, device, distance_m: float | None, walls: int = 0) -> None:
        st = self._st(device)
        st.distance, st.walls = distance_m, walls

    def address(self, device) -> str:
        return self._st(device).address

    def mean_rssi(self, device) -> float | None:
        st = self._st(device)
        if st.distance is None:
            return None
        r = self.radio
        loss = 10 * r.path_exp * math.log10(max(0.1, st.distance)) + r.wall_db * st.walls
        return r.rssi_1m - loss

    def stats(self, device) -> dict:
        st = self._st(device)
        return {"events": st.sent_events, "heard": st.heard_events,
                "rssi": sorted(st.rssi_seen)[len(st.rssi_seen) // 2] if st.rssi_seen else None}

    # -- scheduling (also used by the sinks) --------------------------------------------
    def at(self, t: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._q, (t, next(self._n), fn))

    @property
    def next_at(self) -> int | None:
        return math.ceil(self._q[0][0]) if self._q else None

    # -- the MEDIUM interface -------------------------------------------------------------
    def advertise(self, device, adv, connectable) -> None:
        st = self._st(device)
        now = device.plat.now
        self._t = max(self._t, now)
        st.gen += 1
        st.adv, st.connectable = bytes(adv), bool(connectable)
        st.interval_ms = max(20.0, device.radio.interval_us / 1000)
        start = now
        on = device.plat.counts["radio_on"]
        if on != st.radio_on_seen:  # BLE was just switched on: the controller comes up first
            st.radio_on_seen = on
            r = self.radio.ble_start_ms
            start += device.plat.board.energy.get("ble_on_ms", 200) if r is None else r
        gen = st.gen
        self.at(start + self.rng.uniform(0, self.radio.adv_delay_ms), lambda: self._event(st, gen))

    def stop(self, device) -> None:
        st = self._devs.get(id(device))
        if st is not None:
            st.gen += 1

    def poll(self, now_ms):
        """Run what is due; each action sees `self.now` = its own scheduled time (in real time
        the runner may be a little late, and the air's timing must not drift with it)."""
        q = self._q
        self._in_poll = True
        try:
            while q and q[0][0] <= now_ms:
                t, _n, fn = heapq.heappop(q)
                self._t = max(self._t, t)
                fn()
        finally:
            self._in_poll = False
        self._t = max(self._t, now_ms)
        return self.next_at

    # -- connections (a central: the sinks) ---------------------------------------------
    def connect(self, device, done: Callable[[bool], None], timeout_ms: float) -> None:
        """Connect at the device's next connectable event the initiator hears; done(ok)."""
        st = self._st(device)
        if st.connect_cb is not None:
            cb, st.connect_cb = st.connect_cb, None
            cb(False)  # one initiation per device at a time
        st.connect_token += 1
        token = st.connect_token
        st.connect_cb = done

        def give_up():
            if st.connect_token == token and st.connect_cb is not None:
                cb, st.connect_cb = st.connect_cb, None
                cb(False)
        self.at(self.now + timeout_ms, give_up)

    def cancel_connect(self, device) -> None:
        st = self._st(device)
        st.connect_cb = None
        st.connect_token += 1

    def connecting(self, device) -> bool:
        return self._st(device).connect_cb is not None

    def write(self, device, data: bytes) -> bool:
        return bool(device.radio.deliver_write(bytes(data)))

    def disconnect(self, device) -> None:
        if device.radio.connected:
            device.radio.disconnect()

    # -- internals ------------------------------------------------------------------------
    def _st(self, device) -> _Dev:
        st = self._devs.get(id(device))
        if st is None:
            raise KeyError(f"{device.plat.name} is not in this medium: add() it first")
        return st

    def _hear(self, st: _Dev, t: float) -> int | None:
        """RSSI if the hub's receiver gets this event, else None."""
        mean = self.mean_rssi(st.device)
        if mean is None:
            return None
        r = self.radio
        if r.scan_window_ms < r.scan_interval_ms and \
                (t + self._scan_phase) % r.scan_interval_ms >= r.scan_window_ms:
            return None
        rssi = mean + self.rng.gauss(0, r.shadow_db)
        if self.rng.random() < r.loss:
            return None
        if self.rng.random() < 1 / (1 + math.exp(min(50.0, (rssi - r.sensitivity_dbm) / 1.5))):
            return None
        return max(-126, int(round(rssi)))

    def _event(self, st: _Dev, gen: int) -> None:
        dev = st.device
        if gen != st.gen or not dev.radio.advertising:
            return
        t = self.now
        st.sent_events += 1
        rssi = self._hear(st, t)
        if rssi is not None and st.connect_cb is not None and st.connectable:
            cb, st.connect_cb = st.connect_cb, None
            ok = dev.radio.connect()  # CONNECT_IND: the device stops advertising
            self.at(t + self.radio.conn_setup_ms, lambda: cb(ok))
            if ok:
                return
        sink = self.sink
        if rssi is not None and sink is not None and sink.scanning:
            st.heard_events += 1
            if len(st.rssi_seen) < 2000:
                st.rssi_seen.append(rssi)
            adv, address = st.adv, st.address
            self.at(t + self.radio.report_ms, lambda: sink.heard(dev, address, adv, rssi))
            for obs in self.observers:
                obs(dev, adv, rssi)
        nxt = t + st.interval_ms + self.rng.uniform(0, self.radio.adv_delay_ms)
        self.at(nxt, lambda: self._event(st, gen))
