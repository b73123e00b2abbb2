"""Adapter1 of the BlueZ double: power and per-client discovery sessions (``src/adapter.c``).

bluetoothd keys discovery on the calling D-Bus connection: one session per
connection, filters pre-set per connection, a connection that closes loses its
session, and discovery runs while any session is active. bleak shares one
connection per event loop (its global BlueZManager) for every scanner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from dbus_fast import DBusError, Message, Variant

from hil.sim.bluez_devices import uuid128
from hil.sim.dbus_objects import DBusObject, ObjectTree

ADAPTER = "org.bluez.Adapter1"
E = "org.bluez.Error."
NOT_READY = (E + "NotReady", "Resource Not Ready")
BUSY = (E + "InProgress", "Operation already in progress")
INVALID = (E + "InvalidArguments", "Invalid arguments in method call")
FILTER_SIGNATURES = {
    "UUIDs": "as",
    "RSSI": "n",
    "Pathloss": "q",
    "Transport": "s",
    "DuplicateData": "b",
    "Discoverable": "b",
    "Pattern": "s",
}


class Owner(Protocol):
    """What the adapter needs from the double."""

    def injected(self, method: str) -> tuple[bool, bool]: ...  # (inject InProgress?, sticky?)
    def discovery_started(self) -> None: ...
    def discovery_stopped(self) -> None: ...
    def powered_off(self) -> None: ...
    def remove_device_path(self, path: str) -> bool: ...


@dataclass
class Session:
    filter: dict[str, Any] | None = None
    state: str = "preset"  # preset (a filter only) | active | stuck (InProgress left it listed)


class Adapter:
    def __init__(self, tree: ObjectTree, owner: Owner, name: str, address: str, alias: str) -> None:
        self.tree = tree
        self.owner = owner
        self.sessions: dict[str, Session] = {}
        self.stale = False  # bluez#807: "discovering" still set while the radio is idle
        self.discovering = False
        self.generation = 0  # +1 per discovery start: the controller's duplicate filter is empty
        self.epoch = 0.0
        self.obj = obj = DBusObject(f"/org/bluez/{name}")
        s, b, u = (
            (lambda v: Variant("s", v)),
            (lambda v: Variant("b", v)),
            (lambda v: Variant("u", v)),
        )
        obj.add_interface(
            ADAPTER,
            {
                "Address": s(address),
                "AddressType": s("public"),
                "Name": s(alias),
                "Alias": s(alias),
                "Class": u(0),
                "Powered": b(True),
                "PowerState": s("on"),
                "Discoverable": b(False),
                "DiscoverableTimeout": u(180),
                "Pairable": b(False),
                "PairableTimeout": u(0),
                "Discovering": b(False),
                "UUIDs": Variant("as", []),
                "Modalias": s("usb:v1D6Bp0246d0542"),
                "Roles": Variant("as", ["central", "peripheral"]),
            },
        )
        obj.add_method(ADAPTER, "StartDiscovery", "", "", self._start_discovery)
        obj.add_method(ADAPTER, "StopDiscovery", "", "", self._stop_discovery)
        obj.add_method(ADAPTER, "SetDiscoveryFilter", "a{sv}", "", self._set_discovery_filter)
        obj.add_method(
            ADAPTER, "GetDiscoveryFilters", "", "as", lambda m: [list(FILTER_SIGNATURES)]
        )
        obj.add_method(ADAPTER, "RemoveDevice", "o", "", self._remove_device)
        obj.add_setter(ADAPTER, "Powered", lambda v: self.set_powered(bool(v)))
        tree.make_writable(
            obj,
            ADAPTER,
            "Alias",
            "Discoverable",
            "Pairable",
            "DiscoverableTimeout",
            "PairableTimeout",
        )
        tree.export(obj)

    @property
    def path(self) -> str:
        return self.obj.path

    @property
    def powered(self) -> bool:
        return bool(self.obj.get(ADAPTER, "Powered"))

    @property
    def radio_on(self) -> bool:
        """The controller is really scanning."""
        return (
            self.powered
            and not self.stale
            and any(s.state == "active" for s in self.sessions.values())
        )

    def active_filters(self) -> list[dict[str, Any]]:
        return [s.filter or {} for s in self.sessions.values() if s.state == "active"]

    def remove(self) -> None:
        self.sessions.clear()
        self.stale = self.discovering = False
        self.tree.unexport(self.path)

    def set_powered(self, on: bool) -> None:
        if self.powered == on:
            return
        if not on:  # bluetoothd: drop all sessions and temporary devices, then report Powered
            self.sessions.clear()
            self.stale = False
            self._refresh()
            self.owner.powered_off()
        self.tree.changed(
            self.obj,
            ADAPTER,
            {"Powered": Variant("b", on), "PowerState": Variant("s", "on" if on else "off")},
        )

    def client_gone(self, sender: str) -> None:
        """bluetoothd's disconnect watch: the connection that owned a session closed."""
        if self.sessions.pop(sender, None) is not None:
            self._refresh()

    def _check_powered(self) -> None:
        if not self.powered:
            raise DBusError(*NOT_READY)

    def _start_discovery(self, msg: Message) -> None:
        self._check_powered()
        sender = msg.sender or ""
        session = self.sessions.get(sender)
        if session is not None and session.state != "preset":
            raise DBusError(*BUSY)  # "Every client can only start one discovery"
        kept = session.filter if session else None
        inject, sticky = self.owner.injected("StartDiscovery")
        if inject:
            if sticky:
                self.sessions[sender] = Session(kept, "stuck")
            else:
                self.sessions.pop(sender, None)
            raise DBusError(*BUSY)
        self.sessions[sender] = Session(kept, "active")
        self._refresh()

    def _stop_discovery(self, msg: Message) -> None:
        self._check_powered()
        sender = msg.sender or ""
        session = self.sessions.get(sender)
        if session is None or session.state == "preset":
            raise DBusError(E + "Failed", "No discovery started")
        del self.sessions[sender]
        if self.owner.injected("StopDiscovery")[0]:
            # only the last session's stop reaches the kernel, where the race happens
            self.stale = self.discovering and not any(
                s.state != "preset" for s in self.sessions.values()
            )
            raise DBusError(*BUSY)
        self._refresh()

    def _set_discovery_filter(self, msg: Message) -> None:
        self._check_powered()
        parsed: dict[str, Any] = {}
        for key, value in msg.body[0].items():
            if FILTER_SIGNATURES.get(key) != value.signature:
                raise DBusError(*INVALID)
            parsed[key] = value.value
        if (
            not -127 <= parsed.get("RSSI", 0) <= 20
            or parsed.get("Pathloss", 0) > 137
            or parsed.get("Transport", "auto") not in ("auto", "le", "bredr")
            or ("RSSI" in parsed and "Pathloss" in parsed)
        ):
            raise DBusError(*INVALID)
        if "UUIDs" in parsed:
            parsed["UUIDs"] = {uuid128(u) for u in parsed["UUIDs"]}
        sender = msg.sender or ""
        session = self.sessions.get(sender)
        if session is not None:
            session.filter = parsed or None
            if session.state == "preset" and not parsed:
                del self.sessions[sender]  # "Removing pre-set filter"
        elif parsed:
            self.sessions[sender] = Session(parsed)

    def _remove_device(self, msg: Message) -> None:
        if not self.owner.remove_device_path(msg.body[0]):
            raise DBusError(E + "DoesNotExist", "Does Not Exist")

    def _refresh(self) -> None:
        listed = [s for s in self.sessions.values() if s.state != "preset"]
        if not listed:
            self.stale = False  # the idle branch of the last stop resets "discovering"
        want = self.radio_on or self.stale
        if want == self.discovering:
            return
        self.discovering = want
        if want:
            self.generation += 1
            self.epoch = time.monotonic()
        self.tree.changed(self.obj, ADAPTER, {"Discovering": Variant("b", want)})
        if want:
            self.owner.discovery_started()
        else:
            self.owner.discovery_stopped()
