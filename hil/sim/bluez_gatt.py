"""The connection side of the BlueZ double: Device1.Connect/Disconnect and the GATT objects.

While a device is connected its GATT database is exported as BlueZ's GATT
client exports a remote one (``.../dev_XX/service000a/char000b``), then
``ServicesResolved`` turns true. On disconnect the objects are removed again
(BlueZ keeps no GATT cache for an unbonded device). The carebeacon database
is one primary service with one write characteristic for acknowledgements;
writes are handed to the double (``GattWrite``), which passes the bytes to the
simulated device.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dbus_fast import DBusError, Message, Variant

from hil.sim.dbus_objects import DBusObject, ObjectTree

CAREBEACON_SERVICE_UUID = "ac159b7a-7476-4193-ac7d-9e0b08be16a2"
ACK_CHARACTERISTIC_UUID = "ce565160-994a-43fe-8beb-80aae4f11aa5"
DEVICE = "org.bluez.Device1"
GATT_SERVICE = "org.bluez.GattService1"
GATT_CHARACTERISTIC = "org.bluez.GattCharacteristic1"
DEFAULT_MTU = 23  # no MTU exchange: what the protocol assumes (20-byte writes)

FAILED = "org.bluez.Error.Failed"
NOT_SUPPORTED = ("org.bluez.Error.NotSupported", "Operation is not supported")
ABORTED = "Software caused connection abort"  # what a cancelled or refused connect reports
ABORT_BY_LOCAL = "le-connection-abort-by-local"  # BlueZ >= 5.62: link came up and dropped at once


@dataclass(frozen=True)
class Characteristic:
    uuid: str
    flags: tuple[str, ...] = ("write",)


@dataclass(frozen=True)
class Service:
    uuid: str
    characteristics: tuple[Characteristic, ...]


CAREBEACON_GATT = (Service(CAREBEACON_SERVICE_UUID, (Characteristic(ACK_CHARACTERISTIC_UUID),)),)


class AttError(Exception):
    """Raise from a write callback to make the device answer the write with an ATT error."""

    def __init__(self, code: int = 0x0E, text: str = "") -> None:  # 0x0E: Unlikely Error
        super().__init__(text or f"ATT error 0x{code:02x}")
        self.code = code


@dataclass(frozen=True)
class GattWrite:
    address: str
    uuid: str
    data: bytes
    type: str  # "request" (write with response) or "command" (without response)


@dataclass
class ConnectBehaviour:
    """How the simulated device answers Device1.Connect.

    delay_s: time before the link comes up. hang: never comes up (until Disconnect
    aborts it). fail: error text of org.bluez.Error.Failed (True: "Software caused
    connection abort"; "le-connection-abort-by-local" also toggles Connected on and
    off like BlueZ, which makes bleak retry by itself). fail_times: fail only the
    next n attempts. resolve_delay_s: time between the link and ServicesResolved.
    """

    delay_s: float = 0.0
    hang: bool = False
    fail: str | bool | None = None
    fail_times: int | None = None
    resolve_delay_s: float = 0.0


WriteSink = Callable[[Characteristic, bytes, str], Awaitable[None]]


class Link:
    """Connection state of one Device1 object and the GATT objects it exposes."""

    def __init__(
        self,
        tree: ObjectTree,
        device: DBusObject,
        services: tuple[Service, ...],
        on_write: WriteSink,
    ) -> None:
        self.tree = tree
        self.device = device
        self.services = services
        self.on_write = on_write
        self.connected = False
        self._pending: asyncio.Future[str] | None = None
        self._resolver: asyncio.TimerHandle | None = None
        self._gatt_paths: list[str] = []

    @property
    def connecting(self) -> bool:
        return self._pending is not None

    def _set(self, **values: Any) -> None:
        self.tree.changed(self.device, DEVICE, {k: Variant("b", v) for k, v in values.items()})

    async def connect(self, how: ConnectBehaviour, connectable: bool) -> None:
        if self.connected:
            return
        if self._pending is not None:
            raise DBusError("org.bluez.Error.InProgress", "In Progress")
        self._pending = abort = asyncio.get_running_loop().create_future()
        try:
            hang = how.hang or not connectable  # a device that takes no connections never answers
            if hang or how.delay_s > 0:
                await asyncio.wait({abort}, timeout=None if hang else how.delay_s)
            if abort.done():
                raise DBusError(FAILED, abort.result())
        finally:
            self._pending = None
        if how.fail and how.fail_times != 0:
            if how.fail_times is not None:
                how.fail_times -= 1
            text = ABORTED if how.fail is True else str(how.fail)
            if text == ABORT_BY_LOCAL:
                self._set(Connected=True)
                self._set(Connected=False)
            raise DBusError(FAILED, text)
        self.connected = True
        self._set(Connected=True)
        # BlueZ answers Connect once the link is up; GATT discovery ends later
        self._resolver = asyncio.get_running_loop().call_later(how.resolve_delay_s, self._resolve)

    def _resolve(self) -> None:
        self._resolver = None
        if not self.connected:
            return
        handle = 0x000A
        for svc in self.services:
            spath = f"{self.device.path}/service{handle:04x}"
            sobj = DBusObject(spath)
            sobj.add_interface(
                GATT_SERVICE,
                {
                    "UUID": Variant("s", svc.uuid),
                    "Device": Variant("o", self.device.path),
                    "Primary": Variant("b", True),
                    "Includes": Variant("ao", []),
                },
            )
            self.tree.export(sobj)
            self._gatt_paths.append(spath)
            handle += 1
            for char in svc.characteristics:
                self._export_characteristic(spath, handle, char)
                handle += 3 if {"notify", "indicate"} & set(char.flags) else 2
        uuids = sorted({s.uuid for s in self.services})
        self.tree.changed(
            self.device,
            DEVICE,
            {"UUIDs": Variant("as", uuids), "ServicesResolved": Variant("b", True)},
        )

    def _export_characteristic(self, spath: str, handle: int, char: Characteristic) -> None:
        path = f"{spath}/char{handle:04x}"
        obj = DBusObject(path)
        props = {
            "UUID": Variant("s", char.uuid),
            "Service": Variant("o", spath),
            "Value": Variant("ay", b""),
            "Flags": Variant("as", list(char.flags)),
            "MTU": Variant("q", DEFAULT_MTU),
        }
        notifies = bool({"notify", "indicate"} & set(char.flags))
        if notifies:
            props["Notifying"] = Variant("b", False)
        obj.add_interface(GATT_CHARACTERISTIC, props)

        def read(msg: Message) -> list[Any]:
            if "read" not in char.flags:
                raise DBusError("org.bluez.Error.NotPermitted", "Read not permitted")
            return [obj.get(GATT_CHARACTERISTIC, "Value")]

        def notify(on: bool) -> Callable[[Message], None]:
            def handler(msg: Message) -> None:
                if not notifies:
                    raise DBusError(*NOT_SUPPORTED)
                self.tree.changed(obj, GATT_CHARACTERISTIC, {"Notifying": Variant("b", on)})

            return handler

        def unsupported(msg: Message) -> None:
            raise DBusError(*NOT_SUPPORTED)

        async def write(msg: Message) -> None:
            data, options = bytes(msg.body[0]), msg.body[1]
            wtype = options["type"].value if "type" in options else None
            if wtype == "command" or (wtype is None and "write" not in char.flags):
                if "write-without-response" not in char.flags:
                    raise DBusError(*NOT_SUPPORTED)
                if len(data) > DEFAULT_MTU - 3:
                    raise DBusError(FAILED, "Failed to initiate write")
                wtype = "command"
            elif "write" not in char.flags:
                raise DBusError("org.bluez.Error.NotPermitted", "Write not permitted")
            else:
                wtype = "request"
            await self.on_write(char, data, wtype)

        obj.add_method(GATT_CHARACTERISTIC, "ReadValue", "a{sv}", "ay", read)
        obj.add_method(GATT_CHARACTERISTIC, "WriteValue", "aya{sv}", "", write)
        obj.add_method(GATT_CHARACTERISTIC, "StartNotify", "", "", notify(True))
        obj.add_method(GATT_CHARACTERISTIC, "StopNotify", "", "", notify(False))
        obj.add_method(GATT_CHARACTERISTIC, "AcquireWrite", "a{sv}", "hq", unsupported)
        obj.add_method(GATT_CHARACTERISTIC, "AcquireNotify", "a{sv}", "hq", unsupported)
        self.tree.export(obj)
        self._gatt_paths.append(path)

    def disconnect(self) -> None:
        """Abort a pending connect, or take the link down (either side may call this)."""
        if self._pending is not None and not self._pending.done():
            self._pending.set_result(ABORTED)
        if self._resolver is not None:
            self._resolver.cancel()
            self._resolver = None
        if not self.connected:
            return
        self.connected = False
        if self.device.get(DEVICE, "ServicesResolved"):
            self._set(ServicesResolved=False)
        for path in reversed(self._gatt_paths):
            self.tree.unexport(path)
        self._gatt_paths.clear()
        self._set(Connected=False)
