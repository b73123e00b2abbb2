"""Device1 objects of the BlueZ double and how adverts update them (``src/device.c``)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dbus_fast import DBusError, Message, Variant

from hil.sim.bluez_gatt import Characteristic, Link, Service
from hil.sim.dbus_objects import DBusObject, ObjectTree

DEVICE = "org.bluez.Device1"


def uuid128(u: str) -> str:
    """'180f', '0x180F' or a full UUID -> the lower-case 128-bit form BlueZ uses."""
    u = u.lower().removeprefix("0x")
    return f"{int(u, 16):08x}-0000-1000-8000-00805f9b34fb" if len(u) <= 8 else u


@dataclass(frozen=True)
class Advert:
    """The AD fields bluetoothd turns into Device1 properties (hashable: the dup filter's key)."""

    manufacturer_data: tuple[tuple[int, bytes], ...] = ()
    service_data: tuple[tuple[str, bytes], ...] = ()
    uuids: tuple[str, ...] = ()
    name: str | None = None
    flags: int | None = None
    tx_power: int | None = None

    @classmethod
    def parse(cls, data: bytes) -> Advert:
        """Parse raw AD structures (advert + scan response), e.g. shared.frame.build_adv output."""
        mfr: dict[int, bytes] = {}
        sd: dict[str, bytes] = {}
        uuids: list[str] = []
        name = flags = tx = None
        i = 0
        while i < len(data) and data[i] and i + 1 + data[i] <= len(data):
            t, v = data[i + 1], bytes(data[i + 2 : i + 1 + data[i]])
            i += 1 + data[i]
            if t == 0x01 and v:
                flags = v[0]
            elif t in (0x08, 0x09):  # shortened / complete local name
                name = v.decode("utf-8", "replace") if t == 0x09 or name is None else name
            elif t == 0x0A and v:
                tx = int.from_bytes(v[:1], "little", signed=True)
            elif t == 0xFF and len(v) >= 2:
                mfr[int.from_bytes(v[:2], "little")] = v[2:]
            elif 0x02 <= t <= 0x07:  # 16-, 32-, 128-bit service UUID lists
                size = {0x02: 2, 0x03: 2, 0x04: 4, 0x05: 4}.get(t, 16)
                uuids += [
                    uuid128(v[j : j + size][::-1].hex()) for j in range(0, len(v) - size + 1, size)
                ]
            elif t in (0x16, 0x20, 0x21):  # service data, 16-, 32-, 128-bit UUID
                size = {0x16: 2, 0x20: 4}.get(t, 16)
                sd[uuid128(v[:size][::-1].hex())] = v[size:]
        return cls(tuple(mfr.items()), tuple(sd.items()), tuple(uuids), name, flags, tx)


def filter_matches(f: dict[str, Any], address: str, ad: Advert, rssi: int) -> bool:
    """Does one client's SetDiscoveryFilter let this advert through (adapter.c is_filter_match)?"""
    pattern = f.get("Pattern")
    return (
        f.get("Transport") != "bredr"
        and rssi >= f.get("RSSI", -127)
        and ("Pathloss" not in f or ad.tx_power is None or ad.tx_power - rssi <= f["Pathloss"])
        and (not f.get("UUIDs") or bool(f["UUIDs"] & {*ad.uuids, *dict(ad.service_data)}))
        and (not pattern or address.startswith(pattern) or (ad.name or "").startswith(pattern))
    )


def advert_props(
    ad: Advert, mfr: dict[int, bytes], sd: dict[str, bytes], uuids: list[str]
) -> dict[str, Variant]:
    """Device1 properties carried by adverts; absent ones are absent, as in BlueZ."""
    props: dict[str, Variant] = {}
    if mfr:
        props["ManufacturerData"] = Variant("a{qv}", {k: Variant("ay", v) for k, v in mfr.items()})
    if sd:
        props["ServiceData"] = Variant("a{sv}", {k: Variant("ay", v) for k, v in sd.items()})
    if uuids:
        props["UUIDs"] = Variant("as", uuids)
    if ad.name is not None:
        props["Name"] = props["Alias"] = Variant("s", ad.name)
    if ad.flags is not None:
        props["AdvertisingFlags"] = Variant("ay", bytes([ad.flags]))
    if ad.tx_power is not None:
        props["TxPower"] = Variant("n", ad.tx_power)
    return props


def new_device_props(
    adapter_path: str, address: str, address_type: str, ad: Advert, rssi: int
) -> dict[str, Variant]:
    """Device1 properties of a device bluetoothd has just found."""
    b = lambda v: Variant("b", v)  # noqa: E731
    props = {
        "Address": Variant("s", address),
        "AddressType": Variant("s", address_type),
        "Alias": Variant("s", address.replace(":", "-")),
        "Paired": b(False),
        "Bonded": b(False),
        "Trusted": b(False),
        "Blocked": b(False),
        "LegacyPairing": b(False),
        "Connected": b(False),
        "ServicesResolved": b(False),
        "Adapter": Variant("o", adapter_path),
        "RSSI": Variant("n", rssi),
    }
    props.update(
        advert_props(ad, dict(ad.manufacturer_data), dict(ad.service_data), list(ad.uuids))
    )
    return props


def updated_props(
    current: dict[str, Variant], ad: Advert, rssi: int, *, duplicates: bool, filtered: bool
) -> tuple[dict[str, Variant], set[str]]:
    """(values, forced) for a reported advert of a known device.

    Manufacturer and service data merge per key (bt_ad_add_* report a change only
    when an entry changes); with DuplicateData they are replaced and always emitted.
    RSSI is emitted on every report under a discovery filter (delta threshold 0),
    otherwise on a change of 8 dBm or more (device_set_rssi_with_delta).
    """

    def entries(name: str) -> dict[Any, bytes]:
        return {k: v.value for k, v in current[name].value.items()} if name in current else {}

    mfr = dict(ad.manufacturer_data)
    sd = dict(ad.service_data)
    if not (duplicates and mfr):
        mfr = {**entries("ManufacturerData"), **mfr}
    if not (duplicates and sd):
        sd = {**entries("ServiceData"), **sd}
    old_uuids = current["UUIDs"].value if "UUIDs" in current else []
    values = advert_props(ad, mfr, sd, list(dict.fromkeys([*old_uuids, *ad.uuids])))
    forced = {"ManufacturerData", "ServiceData"} & set(values) if duplicates else set()
    old_rssi = current["RSSI"].value if "RSSI" in current else None
    if old_rssi is None or abs(rssi - old_rssi) >= (0 if filtered else 8):
        values["RSSI"] = Variant("n", rssi)
        forced.add("RSSI")
    return values, forced


@dataclass
class Device:
    address: str
    obj: DBusObject
    link: Link
    connectable: bool = True
    last_report: tuple[object, ...] | None = None  # what the controller's duplicate filter holds
    seen: bool = False  # reported during the current discovery
    expiry: asyncio.TimerHandle | None = None


class DeviceTable:
    """The Device1 objects under one adapter path: created, updated and expired by adverts."""

    def __init__(
        self,
        tree: ObjectTree,
        gatt: tuple[Service, ...],
        counters: Counter[str],
        connect: Callable[[Device], Awaitable[None]],
        write: Callable[[str, Characteristic, bytes, str], Awaitable[None]],
        temporary_timeout_s: float | None,
        scan_cycle_s: float | None,
    ) -> None:
        self.tree = tree
        self.gatt = gatt
        self.counters = counters
        self.connect = connect
        self.write = write
        self.temporary_timeout_s = temporary_timeout_s
        self.scan_cycle_s = scan_cycle_s
        self.by_address: dict[str, Device] = {}

    def receive(
        self,
        adapter_path: str,
        filters: list[dict[str, Any]],
        scan: tuple[int, float],
        address: str,
        ad: Advert,
        rssi: int,
        connectable: bool,
        address_type: str,
    ) -> bool:
        """An advert the radio heard while discovery ran with ``filters`` since ``scan``
        (generation, start time). True if a D-Bus signal was emitted for it."""
        if not any(filter_matches(f, address, ad, rssi) for f in filters):
            self.counters["dropped_filter"] += 1
            return False
        duplicates = any(f.get("DuplicateData") for f in filters)
        generation, epoch = scan
        cycle = int((time.monotonic() - epoch) / self.scan_cycle_s) if self.scan_cycle_s else 0
        report = (ad, connectable, generation, cycle)
        dev = self.by_address.get(address)
        if dev is not None and not duplicates and dev.last_report == report:
            self.counters["dropped_duplicate"] += 1  # the controller's duplicate filter
            return False
        emitted = True
        if dev is None:
            dev = self._create(adapter_path, address, address_type, ad, rssi)
        else:
            values, forced = updated_props(
                dev.obj.props[DEVICE], ad, rssi, duplicates=duplicates, filtered=any(filters)
            )
            emitted = bool(self.tree.changed(dev.obj, DEVICE, values, force=forced))
        dev.last_report, dev.connectable, dev.seen = report, connectable, True
        self._arm_expiry(dev)
        self.counters["reported" if emitted else "dropped_unchanged"] += 1
        return emitted

    def _create(self, adapter_path: str, address: str, atype: str, ad: Advert, rssi: int) -> Device:
        obj = DBusObject(f"{adapter_path}/dev_{address.replace(':', '_')}")
        obj.add_interface(DEVICE, new_device_props(adapter_path, address, atype, ad, rssi))
        link = Link(self.tree, obj, self.gatt, lambda c, d, t: self.write(address, c, d, t))
        dev = Device(address, obj, link)
        obj.add_method(DEVICE, "Connect", "", "", lambda m: self.connect(dev))
        obj.add_method(DEVICE, "Disconnect", "", "", lambda m: dev.link.disconnect())
        obj.add_method(DEVICE, "Pair", "", "", _not_supported)
        obj.add_method(DEVICE, "CancelPairing", "", "", _not_supported)
        self.tree.make_writable(obj, DEVICE, "Trusted", "Blocked")
        self.by_address[address] = dev
        self.tree.export(obj)
        return dev

    def _arm_expiry(self, dev: Device) -> None:
        if dev.expiry is not None:
            dev.expiry.cancel()
        if self.temporary_timeout_s is not None:
            loop = asyncio.get_running_loop()
            dev.expiry = loop.call_later(self.temporary_timeout_s, self._expire, dev)

    def _expire(self, dev: Device) -> None:
        dev.expiry = None
        if dev.link.connected or dev.link.connecting:
            self._arm_expiry(dev)  # bluetoothd keeps connected devices
        elif self.by_address.get(dev.address) is dev:
            self.remove(dev)

    def remove(self, dev: Device) -> None:
        if dev.expiry is not None:
            dev.expiry.cancel()
        dev.link.disconnect()
        self.by_address.pop(dev.address, None)
        self.tree.unexport(dev.obj.path)

    def remove_all(self) -> None:
        for dev in list(self.by_address.values()):
            self.remove(dev)

    def remove_path(self, path: str) -> bool:
        dev = next((d for d in self.by_address.values() if d.obj.path == path), None)
        if dev is not None:
            self.remove(dev)
        return dev is not None

    def discovery_stopped(self) -> None:
        """discovery_cleanup(): RSSI/TxPower invalidated, non-connectable devices dropped."""
        for dev in list(self.by_address.values()):
            if dev.seen:
                dev.seen = False
                self.tree.changed(dev.obj, DEVICE, {}, invalidate=("RSSI", "TxPower"))
            if not dev.connectable and not dev.link.connected:
                self.remove(dev)


def _not_supported(msg: Message) -> None:
    raise DBusError("org.bluez.Error.NotSupported", "Operation is not supported")
