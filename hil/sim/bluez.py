"""A BlueZ test double: owns ``org.bluez`` on a private bus so bleak's real BlueZ backend runs.

Objects, signatures, error names and signal order follow bluetoothd 5.6x-5.8x
(``src/adapter.c``, ``src/device.c``, ``src/gatt-client.c``):

* ``/`` ObjectManager; ``/org/bluez/hci0`` Adapter1; ``.../dev_AA_BB_..`` Device1,
  created by the first advert seen while discovering (``InterfacesAdded``) and
  updated by later ones (``PropertiesChanged`` on ``ManufacturerData``, ``RSSI``...).
* Discovery sessions are per D-Bus connection, as in bluetoothd: a second
  ``StartDiscovery`` from the same connection is ``InProgress``; ``StopDiscovery``
  from a connection that did not start one is ``Failed: No discovery started``;
  a connection that closes loses its session; powering off clears them all.
  bleak shares one connection per event loop for all scanners.
* Duplicate filtering (what the protocol relies on): the controller does not
  report an advert identical to the one it last reported for that address, so
  an identical repeat produces no D-Bus signal at all, whatever its RSSI. The
  filter resets when discovery (re)starts and, as bluetoothd restarts LE
  discovery about every 10.24 s, once per ``scan_cycle_s`` (None: never), so a
  device that repeats one advert is seen about once per cycle. A changed advert
  is always reported. Manufacturer/service data entries merge per key and are
  emitted only when they change; ``RSSI`` is emitted on every reported advert
  under a discovery filter (bleak always sets one), else only on a change of
  8 dBm or more. With ``DuplicateData=True`` in a filter nothing is dropped.
* Devices not seen for ``temporary_timeout_s`` (bluetoothd: 30 s) and not
  connected are removed (``InterfacesRemoved``); when discovery stops, RSSI is
  invalidated and non-connectable devices are removed at once.
* Passive scanning (AdvertisementMonitorManager1) is absent, as on a BlueZ
  without ``--experimental``.

Failure injection: ``inject_in_progress``, ``stop_adverts`` (silent stall),
``remove_adapter``/``restore_adapter``, ``set_powered``, connect behaviours.
The double is driven from the event loop that started it; from another thread
use ``asyncio.run_coroutine_threadsafe(double.advertise(...), double.loop)``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from dbus_fast import BusType, DBusError, Message
from dbus_fast.aio import MessageBus
from dbus_fast.constants import NameFlag, RequestNameReply

from hil.sim.bluez_adapter import ADAPTER, Adapter
from hil.sim.bluez_devices import DEVICE, Advert, Device, DeviceTable, uuid128
from hil.sim.bluez_gatt import (
    ACK_CHARACTERISTIC_UUID,
    CAREBEACON_GATT,
    AttError,
    Characteristic,
    ConnectBehaviour,
    GattWrite,
    Service,
)
from hil.sim.dbus_objects import ObjectTree

__all__ = [
    "ADAPTER",
    "DEVICE",
    "Advert",
    "AttError",
    "BlueZDouble",
    "Characteristic",
    "ConnectBehaviour",
    "GattWrite",
    "Service",
]

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
WriteCallback = Callable[[bytes], "Awaitable[None] | None"]


class BlueZDouble:
    """bluetoothd stand-in on ``bus_address`` (None: the system bus named by the environment)."""

    def __init__(
        self,
        bus_address: str | None = None,
        *,
        adapter: str = "hci0",
        adapter_address: str = "00:1A:7D:DA:71:13",
        adapter_alias: str = "carebeacon-hub",
        temporary_timeout_s: float | None = 30.0,
        scan_cycle_s: float | None = 10.24,
        gatt: tuple[Service, ...] = CAREBEACON_GATT,
    ) -> None:
        self.bus_address = bus_address
        self.adapter_name = adapter
        self.adapter_address = adapter_address
        self.adapter_alias = adapter_alias
        self.temporary_timeout_s = temporary_timeout_s
        self.scan_cycle_s = scan_cycle_s
        self.gatt = gatt
        self.calls: Counter[str] = Counter()  # D-Bus method name -> calls, failed ones included
        self.call_log: list[tuple[str, str, str]] = []  # (method, object path, sender)
        self.adverts: Counter[str] = Counter()  # sent, reported, dropped_<why>
        self.writes: list[GattWrite] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.bus: MessageBus | None = None
        self.adapter: Adapter | None = None
        self._tree: ObjectTree | None = None
        self._table: DeviceTable | None = None
        self._behaviour: dict[str, ConnectBehaviour] = {}
        self._callbacks: dict[str, dict[str, WriteCallback]] = {}
        self._inject: Counter[str] = Counter()
        self._sticky = False
        self._stall: str | None = None  # what ends a stop_adverts() stall

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> BlueZDouble:
        self.loop = asyncio.get_running_loop()
        bus = (
            MessageBus(bus_address=self.bus_address)
            if self.bus_address
            else MessageBus(bus_type=BusType.SYSTEM)
        )
        self.bus = await bus.connect()
        self._tree = ObjectTree(self.bus, self._count)
        self._table = DeviceTable(
            self._tree,
            self.gatt,
            self.adverts,
            self._connect,
            self._write,
            self.temporary_timeout_s,
            self.scan_cycle_s,
        )
        self.bus.add_message_handler(self._on_name_owner_changed)
        await self.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"],
            )
        )
        self.adapter = self._new_adapter(self.adapter_name)
        if (
            await self.bus.request_name(BLUEZ, NameFlag.DO_NOT_QUEUE)
            != RequestNameReply.PRIMARY_OWNER
        ):
            raise RuntimeError("org.bluez is already owned on this bus")
        return self

    async def stop(self) -> None:
        for dev in self._devices.values():
            if dev.expiry:
                dev.expiry.cancel()
            dev.link.disconnect()  # ends pending connects too
        if self.bus is not None:
            self.bus.disconnect()
            try:
                await asyncio.wait_for(self.bus.wait_for_disconnect(), 2)
            except Exception:
                pass

    async def __aenter__(self) -> BlueZDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- control API: things that happen -------------------------------------------------------

    async def advertise(
        self,
        address: str,
        manufacturer_data: dict[int, bytes] | None = None,
        *,
        rssi: int = -60,
        name: str | None = None,
        service_data: dict[str, bytes] | None = None,
        service_uuids: list[str] | None = None,
        tx_power: int | None = None,
        flags: int | None = 0x06,
        connectable: bool = True,
        address_type: str = "public",
    ) -> bool:
        """One advert from ``address``. True if bluetoothd emits a D-Bus signal for it."""
        ad = Advert(
            tuple((manufacturer_data or {}).items()),
            tuple((uuid128(k), bytes(v)) for k, v in (service_data or {}).items()),
            tuple(uuid128(u) for u in service_uuids or ()),
            name,
            flags,
            tx_power,
        )
        return self._receive(address.upper(), ad, rssi, connectable, address_type)

    async def advertise_raw(
        self,
        address: str,
        adv: bytes,
        *,
        scan_response: bytes = b"",
        rssi: int = -60,
        connectable: bool = True,
        address_type: str = "public",
    ) -> bool:
        """Like advertise(), from raw AD bytes (e.g. the firmware's 31-byte legacy advert)."""
        ad = Advert.parse(bytes(adv) + bytes(scan_response))
        return self._receive(address.upper(), ad, rssi, connectable, address_type)

    async def disconnect(self, address: str) -> None:
        """The device drops the link (or walks out of range while connected)."""
        dev = self._devices.get(address.upper())
        if dev is not None:
            dev.link.disconnect()

    async def forget(self, address: str) -> None:
        """bluetoothd drops the device object now (as its temporary timeout would)."""
        dev = self._devices.get(address.upper())
        if dev is not None:
            self._devices_().remove(dev)

    async def remove_adapter(self) -> None:
        """The adapter vanishes (USB unplug, driver crash): devices, then hci0, are removed.
        Calls on the old path then fail with org.freedesktop.DBus.Error.UnknownObject."""
        if self.adapter is None:
            return
        self._devices_().remove_all()
        self.adapter.remove()
        self.adapter = None
        if self._stall in ("discovery_restart", "power_cycle"):
            self._stall = None

    async def restore_adapter(self, name: str | None = None) -> None:
        """The adapter returns, powered and idle, possibly as another hciN."""
        if self.adapter is None:
            self.adapter = self._new_adapter(name or self.adapter_name)

    async def set_powered(self, on: bool) -> None:
        """rfkill / power switch; the same as a client setting Adapter1.Powered."""
        if self.adapter is not None:
            self.adapter.set_powered(on)

    # -- control API: knobs --------------------------------------------------------------------

    def on_write(
        self, address: str, callback: WriteCallback, uuid: str = ACK_CHARACTERISTIC_UUID
    ) -> None:
        """Call ``callback(bytes)`` (may be async) when the hub writes ``uuid`` on ``address``.
        Raising AttError(code) (any other exception: code 0x0E) fails a write with response."""
        self._callbacks.setdefault(address.upper(), {})[uuid.lower()] = callback

    def set_connect_behaviour(
        self,
        address: str,
        *,
        delay_s: float = 0.0,
        hang: bool = False,
        fail: str | bool | None = None,
        fail_times: int | None = None,
        resolve_delay_s: float = 0.0,
    ) -> ConnectBehaviour:
        """How ``address`` answers Device1.Connect from now on: see ConnectBehaviour."""
        how = ConnectBehaviour(delay_s, hang, fail, fail_times, resolve_delay_s)
        self._behaviour[address.upper()] = how
        return how

    def inject_in_progress(
        self, n: int = 1, method: str = "StartDiscovery", *, sticky: bool = False
    ) -> None:
        """The next ``n`` calls of ``method`` ("StartDiscovery", "StopDiscovery" or "any") fail
        with org.bluez.Error.InProgress.

        StartDiscovery: nothing starts. With ``sticky`` the caller's session stays listed, as in
        older bluetoothd, so its later starts fail InProgress too until that same D-Bus
        connection calls StopDiscovery or closes, or the adapter is power-cycled.
        StopDiscovery: the session is gone but the adapter keeps "discovering" with the radio
        idle (bluez#807): later starts succeed yet report nothing until the last session stops.
        """
        assert method in ("StartDiscovery", "StopDiscovery", "any")
        self._inject[method] += n
        self._sticky = sticky

    def stop_adverts(self, cleared_by: str = "resume") -> None:
        """Silent stall: discovery looks alive, no advert is reported. Ends on resume_adverts(),
        or also when discovery restarts ("discovery_restart") or the adapter is power-cycled or
        replaced ("power_cycle")."""
        assert cleared_by in ("resume", "discovery_restart", "power_cycle")
        self._stall = cleared_by

    def resume_adverts(self) -> None:
        self._stall = None

    # -- state for assertions ------------------------------------------------------------------

    @property
    def adapter_path(self) -> str | None:
        return self.adapter.path if self.adapter else None

    @property
    def discovering(self) -> bool:
        """Adapter1.Discovering as clients see it."""
        return bool(self.adapter and self.adapter.discovering)

    @property
    def scanning(self) -> bool:
        """An advert sent now could be reported."""
        return bool(self.adapter and self.adapter.radio_on and self._stall is None)

    def device_path(self, address: str) -> str | None:
        dev = self._devices.get(address.upper())
        return dev.obj.path if dev else None

    def is_connected(self, address: str) -> bool:
        dev = self._devices.get(address.upper())
        return bool(dev and dev.link.connected)

    # -- Adapter owner hooks -------------------------------------------------------------------

    def injected(self, method: str) -> tuple[bool, bool]:
        for key in (method, "any"):
            if self._inject[key] > 0:
                self._inject[key] -= 1
                return True, self._sticky
        return False, False

    def discovery_started(self) -> None:
        if self._stall == "discovery_restart":
            self._stall = None

    def discovery_stopped(self) -> None:
        self._devices_().discovery_stopped()

    def powered_off(self) -> None:
        self._devices_().remove_all()
        if self._stall in ("discovery_restart", "power_cycle"):
            self._stall = None

    def remove_device_path(self, path: str) -> bool:
        return self._devices_().remove_path(path)

    # -- internals -----------------------------------------------------------------------------

    def _tree_(self) -> ObjectTree:
        assert self._tree is not None, "start() the double first"
        return self._tree

    def _devices_(self) -> DeviceTable:
        assert self._table is not None, "start() the double first"
        return self._table

    @property
    def _devices(self) -> dict[str, Device]:
        return self._table.by_address if self._table else {}

    def _new_adapter(self, name: str) -> Adapter:
        return Adapter(self._tree_(), self, name, self.adapter_address, self.adapter_alias)

    def _count(self, member: str, path: str, sender: str) -> None:
        self.calls[member] += 1
        self.call_log.append((member, path, sender))

    def _on_name_owner_changed(self, msg: Message) -> None:
        if msg.member == "NameOwnerChanged" and msg.sender == "org.freedesktop.DBus":
            name, _old, new = msg.body
            if not new and self.adapter is not None:
                self.adapter.client_gone(name)

    def _receive(self, address: str, ad: Advert, rssi: int, connectable: bool, atype: str) -> bool:
        self.adverts["sent"] += 1
        adapter = self.adapter
        if adapter is None or not self.scanning:
            self.adverts["dropped_not_scanning"] += 1
            return False
        scan = (adapter.generation, adapter.epoch)
        filters = adapter.active_filters()
        return self._devices_().receive(
            adapter.path, filters, scan, address, ad, rssi, connectable, atype
        )

    async def _connect(self, dev: Device) -> None:
        if self.adapter is None or not self.adapter.powered:
            raise DBusError("org.bluez.Error.NotReady", "Resource Not Ready")
        how = self._behaviour.setdefault(dev.address, ConnectBehaviour())
        await dev.link.connect(how, dev.connectable)

    async def _write(self, address: str, char: Characteristic, data: bytes, wtype: str) -> None:
        self.writes.append(GattWrite(address, char.uuid, data, wtype))
        callback = self._callbacks.get(address, {}).get(char.uuid.lower())
        if callback is None:
            return
        try:
            result = callback(data)
            if inspect.isawaitable(result):
                await result
        except Exception as e:
            if wtype == "command":
                return  # nothing on air tells the hub that a write command failed
            if not isinstance(e, AttError):
                log.warning("write callback for %s raised %r: answering ATT error 0x0e", address, e)
            code = e.code if isinstance(e, AttError) else 0x0E
            raise DBusError(
                "org.bluez.Error.Failed", f"Operation failed with ATT error: 0x{code:02x}"
            ) from e
