"""The simulated home in real time, behind the BlueZ double: the real hub process's radio path.

    runner = RealTime(home, double)          # on the double's event loop
    loop.create_task(runner.run())

- Adverts the medium lets through go to `BlueZDouble.advertise_raw` (bluetoothd's
  duplicate filter, Device1 objects, D-Bus signals), where the hub's bleak scanner gets
  them as from a real adapter.
- `HomeBlueZ` puts the medium behind Device1.Connect: a link comes up only at a
  connectable advert of the device that the initiator hears (the device then stops
  advertising, as NimBLE does), and fails for a device that is not advertising (after
  `connect_give_up_s`, the kernel's LE connection timeout). GATT discovery takes
  `gatt_s` (ServicesResolved), a write `write_s`; the acknowledgement then reaches the
  firmware's radio (`deliver_write`).
- The link is one state on both sides: the hub's Disconnect drops the device's link and the
  device's own disconnect (4 s limit, power loss) drops the hub's.

`RealTime` drives the World on the wall clock: world time (ms) = monotonic time since the
start, so a press at world time t happened at monotonic `runner.mono(t)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from dbus_fast import DBusError

from hil.sim.bluez import AttError, BlueZDouble

ABORTED = "le-connection-abort-by-local"


class HomeBlueZ(BlueZDouble):
    """BlueZDouble whose Device1.Connect waits for the simulated radio link."""

    runner: RealTime | None = None

    async def _connect(self, dev) -> None:
        if self.runner is not None and not self.is_connected(dev.address):
            link = dev.link
            if link.connecting:
                raise DBusError("org.bluez.Error.InProgress", "In Progress")
            # Device1.Disconnect while we wait cancels the attempt, as bluetoothd cancels a
            # pending LE connection: the link's pending future is what Disconnect resolves.
            abort = asyncio.get_running_loop().create_future()
            link._pending = abort
            try:
                await self.runner.link_up(dev.address, abort)
            finally:
                if link._pending is abort:
                    link._pending = None
        await super()._connect(dev)


class BlueZSink:
    """Medium sink: heard adverts become advertising reports of the double."""

    def __init__(self, double: BlueZDouble):
        self.double = double

    @property
    def scanning(self) -> bool:
        return self.double.scanning

    def heard(self, device, address: str, adv: bytes, rssi: int) -> None:
        asyncio.get_running_loop().create_task(
            self.double.advertise_raw(address, adv, rssi=rssi))


class RealTime:
    def __init__(self, home, double: HomeBlueZ, *, gatt_s: float = 0.15, write_s: float = 0.06,
                 connect_give_up_s: float = 20.0):
        self.home, self.double = home, double
        self.world, self.medium = home.world, home.medium
        self.gatt_s, self.write_s, self.give_up_s = gatt_s, write_s, connect_give_up_s
        self.t0 = time.monotonic() - self.world.now / 1000
        self.connecting: set[str] = set()
        self.writes = 0
        self.errors: list[BaseException] = []
        self._wake = asyncio.Event()
        self._stop = False
        double.runner = self
        self.medium.sink = BlueZSink(double)
        for address in self.medium.by_address:
            self.register(address)

    def register(self, address: str) -> None:
        self.double.on_write(address, lambda data, a=address: self._on_write(a, data))
        self.double.set_connect_behaviour(address, resolve_delay_s=self.gatt_s)

    # -- time --------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int((time.monotonic() - self.t0) * 1000)

    def mono(self, t_ms: float) -> float:
        return self.t0 + t_ms / 1000

    def sync(self) -> None:
        """Bring the world up to the wall clock (call before acting on it from outside)."""
        now = self.now_ms()
        if now > self.world.now:
            self.world.run_until(now)

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stop:
            try:
                self.sync()
                self._links()
            except Exception as e:  # a firmware or sim bug: keep it for the caller to see
                self.errors.append(e)
                raise
            nxt = self.medium.next_at
            for d in self.world.devices:
                if d.next_at is not None and (nxt is None or d.next_at < nxt):
                    nxt = d.next_at
            busy = self.connecting or any(d.radio.connected for d in self.world.devices)
            cap = 0.02 if busy else 0.5
            delay = cap if nxt is None else min(cap, max(0.0, (nxt - self.now_ms()) / 1000))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    # -- links --------------------------------------------------------------------------------
    async def link_up(self, address: str, abort: asyncio.Future | None = None) -> None:
        """Device1.Connect: wait for the device's next connectable advert the hub hears;
        `abort` (resolved by Device1.Disconnect) cancels the attempt."""
        device = self.medium.by_address.get(address)
        if device is None:
            raise DBusError("org.bluez.Error.Failed", ABORTED)
        self.sync()
        fut = asyncio.get_running_loop().create_future()
        self.connecting.add(address)
        self.medium.connect(device, lambda ok: fut.done() or fut.set_result(ok),
                            self.give_up_s * 1000)
        self.kick()
        try:
            waiting = {fut} if abort is None else {fut, abort}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.connecting.discard(address)
            if not fut.done():  # aborted or cancelled: the device must not connect later
                self.medium.cancel_connect(device)
        if not fut.done():
            raise DBusError("org.bluez.Error.Failed", abort.result() if abort else ABORTED)
        if not fut.result():
            raise DBusError("org.bluez.Error.Failed", ABORTED)

    async def _on_write(self, address: str, data: bytes) -> None:
        await asyncio.sleep(self.write_s)
        self.sync()
        device = self.medium.by_address[address]
        if not self.medium.write(device, data):
            raise AttError(0x0E, "the device is not connected")
        self.writes += 1
        self.kick()

    def _links(self) -> None:
        for address, device in self.medium.by_address.items():
            fw = device.radio.connected
            bz = self.double.is_connected(address)
            if fw and not bz and address not in self.connecting:
                self.medium.disconnect(device)  # the hub hung up
            elif bz and not fw:
                asyncio.get_running_loop().create_task(self.double.disconnect(address))
