"""A small D-Bus object tree served the way bluetoothd's gdbus serves it.

Why not dbus-fast's ``ServiceInterface``/``bus.export``: BlueZ objects do not
fit it. BlueZ properties are optional per object (``Name``, ``RSSI``,
``TxPower``, ``ManufacturerData``, ``UUIDs`` exist only once known), while a
``ServiceInterface`` property exists on every instance of the class and a
getter that raises makes ``GetManagedObjects`` fail for the whole tree.
``bus.export`` also emits one ``InterfacesAdded`` per interface from the
object's own path, where BlueZ emits one signal per object from ``/`` with
all its interfaces, and a call to a path nobody exports is answered
``UnknownMethod`` where BlueZ answers ``UnknownObject`` (which bleak checks
for). So this module serves the tree from a dbus-fast message handler using
only dbus-fast's public API (``Message``, ``Variant``, ``DBusError``,
``add_message_handler``), and BlueZ semantics stay explicit in bluez.py.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any
from xml.sax.saxutils import quoteattr

from dbus_fast import DBusError, Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.signature import get_signature_tree

log = logging.getLogger(__name__)

OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
PROPERTIES = "org.freedesktop.DBus.Properties"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"
UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
FAILED = "org.freedesktop.DBus.Error.Failed"

_STANDARD_XML = {
    INTROSPECTABLE: f'<interface name="{INTROSPECTABLE}"><method name="Introspect">'
    '<arg name="xml" type="s" direction="out"/></method></interface>',
    PROPERTIES: f'<interface name="{PROPERTIES}">'
    '<method name="Get"><arg name="interface" type="s" direction="in"/>'
    '<arg name="name" type="s" direction="in"/><arg name="value" type="v" direction="out"/>'
    '</method><method name="Set"><arg name="interface" type="s" direction="in"/>'
    '<arg name="name" type="s" direction="in"/><arg name="value" type="v" direction="in"/>'
    '</method><method name="GetAll"><arg name="interface" type="s" direction="in"/>'
    '<arg name="properties" type="a{sv}" direction="out"/></method>'
    '<signal name="PropertiesChanged"><arg name="interface" type="s"/>'
    '<arg name="changed_properties" type="a{sv}"/>'
    '<arg name="invalidated_properties" type="as"/></signal></interface>',
    OBJECT_MANAGER: f'<interface name="{OBJECT_MANAGER}"><method name="GetManagedObjects">'
    '<arg name="objects" type="a{oa{sa{sv}}}" direction="out"/></method>'
    '<signal name="InterfacesAdded"><arg name="object" type="o"/>'
    '<arg name="interfaces" type="a{sa{sv}}"/></signal>'
    '<signal name="InterfacesRemoved"><arg name="object" type="o"/>'
    '<arg name="interfaces" type="as"/></signal></interface>',
}

# A method implementation gets the call message and returns the reply body
# (None for an empty one), or a coroutine producing it. Raise DBusError to reply an error.
Handler = Callable[[Message], "list[Any] | None | Awaitable[list[Any] | None]"]
Setter = Callable[[Any], object]


@dataclass
class _Method:
    in_sig: str
    out_sig: str
    fn: Handler


class DBusObject:
    """One object path: interfaces, their present properties, methods, writable properties."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.props: dict[str, dict[str, Variant]] = {}
        self.methods: dict[tuple[str, str], _Method] = {}
        self.setters: dict[tuple[str, str], Setter] = {}

    def add_interface(self, name: str, props: dict[str, Variant]) -> None:
        self.props[name] = dict(props)

    def add_method(self, iface: str, member: str, in_sig: str, out_sig: str, fn: Handler) -> None:
        self.methods[(iface, member)] = _Method(in_sig, out_sig, fn)

    def add_setter(self, iface: str, name: str, fn: Setter) -> None:
        self.setters[(iface, name)] = fn

    def get(self, iface: str, name: str, default: Any = None) -> Any:
        v = self.props.get(iface, {}).get(name)
        return default if v is None else v.value


class ObjectTree:
    """Serves DBusObjects on ``bus``; emits ObjectManager and Properties signals like gdbus.

    ``on_call(member, path, sender)`` sees every method call to a non-standard
    interface before it is dispatched, including calls that will fail.
    """

    def __init__(self, bus: MessageBus, on_call: Callable[[str, str, str], None] | None = None):
        self.bus = bus
        self.objects: dict[str, DBusObject] = {}
        self.on_call = on_call
        self._tasks: set[asyncio.Task[None]] = set()
        bus.add_message_handler(self._on_message)

    # -- signals -------------------------------------------------------------------------------

    def _signal(self, path: str, iface: str, member: str, sig: str, body: list[Any]) -> None:
        if self.bus.connected:
            self.bus.send(Message.new_signal(path, iface, member, sig, body))

    @staticmethod
    def _interfaces_of(obj: DBusObject) -> dict[str, dict[str, Variant]]:
        # gdbus lists the standard interfaces too, with no properties
        ifaces: dict[str, dict[str, Variant]] = {INTROSPECTABLE: {}, PROPERTIES: {}}
        ifaces.update({name: dict(props) for name, props in obj.props.items()})
        return ifaces

    def export(self, obj: DBusObject) -> None:
        self.objects[obj.path] = obj
        self._signal(
            "/",
            OBJECT_MANAGER,
            "InterfacesAdded",
            "oa{sa{sv}}",
            [obj.path, self._interfaces_of(obj)],
        )

    def unexport(self, path: str) -> DBusObject | None:
        obj = self.objects.pop(path, None)
        if obj is not None:
            self._signal(
                "/",
                OBJECT_MANAGER,
                "InterfacesRemoved",
                "oas",
                [path, list(self._interfaces_of(obj))],
            )
        return obj

    def changed(
        self,
        obj: DBusObject,
        iface: str,
        values: dict[str, Variant],
        force: Iterable[str] = (),
        invalidate: Iterable[str] = (),
    ) -> dict[str, Variant]:
        """Store ``values``; emit one PropertiesChanged with those that differ (or are forced)
        and with ``invalidate``d properties removed. Returns what was emitted as changed."""
        props = obj.props[iface]
        force = set(force)
        emitted = {k: v for k, v in values.items() if k in force or props.get(k) != v}
        props.update(values)
        gone = [k for k in invalidate if props.pop(k, None) is not None]
        if (emitted or gone) and obj.path in self.objects:
            self._signal(
                obj.path, PROPERTIES, "PropertiesChanged", "sa{sv}as", [iface, emitted, gone]
            )
        return emitted

    def make_writable(self, obj: DBusObject, iface: str, *names: str) -> None:
        """Let clients Set these properties: the new value is stored and PropertiesChanged sent."""
        for name in names:
            sig = obj.props[iface][name].signature
            obj.add_setter(iface, name, partial(self._store, obj, iface, name, sig))

    def _store(self, obj: DBusObject, iface: str, name: str, sig: str, value: Any) -> None:
        self.changed(obj, iface, {name: Variant(sig, value)})

    # -- method calls --------------------------------------------------------------------------

    def _on_message(self, msg: Message) -> bool | None:
        if msg.message_type != MessageType.METHOD_CALL:
            return None
        iface, member, path = msg.interface or "", msg.member or "", msg.path or "/"
        if iface == "org.freedesktop.DBus.Peer":
            return None  # dbus-fast answers Ping / GetMachineId
        if iface == INTROSPECTABLE and member == "Introspect":
            self._reply(msg, "s", [self._introspect(path)])
            return True
        if iface == OBJECT_MANAGER and path == "/":
            if member != "GetManagedObjects":
                return self._error(msg, UNKNOWN_METHOD, f'No method "{member}" on {iface}')
            managed = {p: self._interfaces_of(o) for p, o in self.objects.items()}
            self._reply(msg, "a{oa{sa{sv}}}", [managed])
            return True
        obj = self.objects.get(path)
        if iface != PROPERTIES and self.on_call is not None:
            self.on_call(member, path, msg.sender or "")
        if obj is None:
            return self._error(
                msg,
                UNKNOWN_OBJECT,
                f'Method "{member}" with signature '
                f'"{msg.signature}" on interface "{iface}" doesn\'t exist',
            )
        if iface == PROPERTIES:
            return self._properties(obj, msg)
        method = obj.methods.get((iface, member))
        if method is None or method.in_sig != msg.signature:
            return self._error(
                msg,
                UNKNOWN_METHOD,
                f'Method "{member}" with signature '
                f'"{msg.signature}" on interface "{iface}" doesn\'t exist',
            )
        try:
            result = method.fn(msg)
        except DBusError as e:
            return self._error(msg, e.type, e.text)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._finish(msg, method, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._reply(msg, method.out_sig, result or [])
        return True

    async def _finish(self, msg: Message, method: _Method, pending: Awaitable[Any]) -> None:
        try:
            body = await pending
        except DBusError as e:
            self._error(msg, e.type, e.text)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in the double: tell the caller, log it here
            log.exception("BlueZ double: %s.%s failed", msg.interface, msg.member)
            self._error(msg, FAILED, f"{type(e).__name__}: {e}")
        else:
            self._reply(msg, method.out_sig, body or [])

    def _properties(self, obj: DBusObject, msg: Message) -> bool:
        member, body = msg.member, msg.body
        expected = {"Get": "ss", "GetAll": "s", "Set": "ssv"}.get(member or "")
        if expected is None or msg.signature != expected:
            return self._error(
                msg, UNKNOWN_METHOD, f'No method "{member}" with signature "{msg.signature}"'
            )
        props = obj.props.get(body[0])
        if props is None:
            return self._error(msg, INVALID_ARGS, f"No such interface '{body[0]}'")
        if member == "GetAll":
            self._reply(msg, "a{sv}", [dict(props)])
        elif member == "Get":
            if body[1] not in props:
                return self._error(msg, INVALID_ARGS, f"No such property '{body[1]}'")
            self._reply(msg, "v", [props[body[1]]])
        else:
            setter = obj.setters.get((body[0], body[1]))
            if setter is None:
                return self._error(
                    msg,
                    "org.freedesktop.DBus.Error.PropertyReadOnly",
                    f"Property '{body[1]}' is not writable",
                )
            try:
                setter(body[2].value)
            except DBusError as e:
                return self._error(msg, e.type, e.text)
            self._reply(msg, "", [])
        return True

    def _reply(self, msg: Message, sig: str, body: list[Any]) -> None:
        if not msg.flags & MessageFlag.NO_REPLY_EXPECTED and self.bus.connected:
            self.bus.send(Message.new_method_return(msg, sig, body))

    def _error(self, msg: Message, name: str, text: str) -> bool:
        if not msg.flags & MessageFlag.NO_REPLY_EXPECTED and self.bus.connected:
            self.bus.send(Message.new_error(msg, name, text))
        return True

    def _introspect(self, path: str) -> str:
        out = [
            '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
            ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n<node>'
        ]
        if path == "/":
            out.append(_STANDARD_XML[OBJECT_MANAGER])
        obj = self.objects.get(path)
        if obj is not None:
            for name in self._interfaces_of(obj):
                if name in _STANDARD_XML:
                    out.append(_STANDARD_XML[name])
                    continue
                out.append(f"<interface name={quoteattr(name)}>")
                for (iface, member), m in obj.methods.items():
                    if iface == name:
                        args = [
                            f'<arg type={quoteattr(t.signature)} direction="{d}"/>'
                            for sig, d in ((m.in_sig, "in"), (m.out_sig, "out"))
                            for t in get_signature_tree(sig).types
                        ]
                        out.append(f"<method name={quoteattr(member)}>{''.join(args)}</method>")
                for prop, v in obj.props.get(name, {}).items():
                    access = "readwrite" if (name, prop) in obj.setters else "read"
                    out.append(
                        f"<property name={quoteattr(prop)} type={quoteattr(v.signature)} "
                        f'access="{access}"/>'
                    )
                out.append("</interface>")
        prefix = path.rstrip("/") + "/"
        children = sorted(
            {p[len(prefix) :].split("/")[0] for p in self.objects if p.startswith(prefix)}
        )
        out.extend(f"<node name={quoteattr(c)}/>" for c in children)
        out.append("</node>")
        return "\n".join(out)
