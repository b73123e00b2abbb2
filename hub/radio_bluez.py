"""The radio's own D-Bus line to bluetoothd, and the timeout helper every radio await goes through.

bleak 3.1 scans and connects, but has no public API to list adapters with their
MAC address, to read whether one is powered or discovering, or to power-cycle
one. The reset ladder needs all three (ble-hub notes,
failure modes 1-4), so this module asks bluetoothd directly over a D-Bus
connection of its own. It never starts or stops discovery: BlueZ keys discovery
sessions on the calling connection, so nothing done here can touch bleak's
session, except a power cycle, whose purpose is to clear every session.

The connection honours DBUS_SYSTEM_BUS_ADDRESS (dbus-fast reads it), so tests
point it at the private bus where hil.sim.bluez.BlueZDouble owns org.bluez.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from bleak.exc import BleakDBusError
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.auth import AuthExternal

log = logging.getLogger("carebeacon.radio")

BLUEZ = "org.bluez"
ADAPTER1 = "org.bluez.Adapter1"
PROPERTIES = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"
IN_PROGRESS = "org.bluez.Error.InProgress"
NOT_READY = "org.bluez.Error.NotReady"

T = TypeVar("T")


@dataclass(frozen=True)
class AdapterInfo:
    name: str  # "hci0": may change across a replug or a driver reset
    address: str  # the controller's MAC: how we recognise the same adapter under a new name
    powered: bool
    discovering: bool


class BlueZCallError(Exception):
    """bluetoothd (or the bus) answered a call with a D-Bus error."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}" if text else name)
        self.name = name


async def bounded(
    coro: Awaitable[T],
    timeout: float,
    what: str,
    tasks: set[asyncio.Task[Any]],
    grace: float = 2.0,
) -> T:
    """``await coro`` for at most ``timeout`` s, else raise TimeoutError naming ``what``.

    Why not asyncio.wait_for: on timeout it cancels the operation and then waits for the
    cancellation to finish, and bleak's cancellation cleanup itself makes D-Bus calls
    (Disconnect, StopDiscovery). On a wedged bus those never return, so wait_for would hang
    with them. Here the operation runs in a task of its own, kept in ``tasks`` until it ends
    (Radio.stop() cancels what is left); once cancelled we wait ``grace`` s at most for it.
    If the task is cancelled by someone else (Radio.stop()), TimeoutError too: callers treat
    both as "the operation did not complete".
    """
    task = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    # retrieve the outcome so asyncio never logs "exception was never retrieved" for an
    # operation we stopped waiting for
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        if task.cancelled():
            raise TimeoutError(f"{what}: cancelled (radio stopping)")
        return task.result()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        log.error("%s: still stuck %g s after cancelling it; abandoning it", what, grace)
    raise TimeoutError(f"{what}: no answer within {timeout:g} s")


def describe(exc: BaseException) -> str:
    """A short reason for logs and health.detail (never contains key material: we have none)."""
    if isinstance(exc, BleakDBusError):
        details = exc.dbus_error_details
        return f"{exc.dbus_error}: {details}" if details else exc.dbus_error
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _authenticator() -> AuthExternal | None:
    # the same override bleak honours (BLEAK_DBUS_AUTH_UID), so both connections authenticate alike
    try:
        return AuthExternal(uid=int(os.environ["BLEAK_DBUS_AUTH_UID"]))
    except (KeyError, ValueError):
        return None


class BlueZControl:
    """Adapter lookup and power over a D-Bus connection of our own; every call bounded."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._bus: MessageBus | None = None

    async def adapters(self) -> dict[str, AdapterInfo]:
        """Every adapter bluetoothd has, by name. One GetManagedObjects: used only when starting
        or looking for a lost adapter, never per watchdog tick (it lists every device too)."""
        (objects,) = await self._call("/", OBJECT_MANAGER, "GetManagedObjects")
        found = {}
        for path, interfaces in objects.items():
            props = interfaces.get(ADAPTER1)
            if props is not None and path.startswith("/org/bluez/"):
                info = _info(path.rsplit("/", 1)[-1], props)
                found[info.name] = info
        return found

    async def adapter(self, name: str) -> AdapterInfo | None:
        """One adapter's state (a small GetAll: cheap enough for every watchdog tick);
        None if it is gone."""
        try:
            (props,) = await self._call(f"/org/bluez/{name}", PROPERTIES, "GetAll", "s", [ADAPTER1])
        except BlueZCallError as e:
            if e.name == UNKNOWN_OBJECT:
                return None
            raise
        return _info(name, props)

    async def set_powered(self, name: str, on: bool) -> None:
        await self._call(
            f"/org/bluez/{name}", PROPERTIES, "Set", "ssv", [ADAPTER1, "Powered", Variant("b", on)]
        )

    async def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.disconnect()

    async def _call(
        self, path: str, interface: str, member: str, signature: str = "", body: list | None = None
    ) -> list[Any]:
        try:
            async with asyncio.timeout(self.timeout_s):
                bus = await self._connected()
                reply = await bus.call(
                    Message(
                        destination=BLUEZ,
                        path=path,
                        interface=interface,
                        member=member,
                        signature=signature,
                        body=body or [],
                    )
                )
        except TimeoutError:
            # a connection that stopped answering is replaced rather than trusted again
            await self.close()
            raise TimeoutError(
                f"bluetoothd: {member} on {path}: no answer in {self.timeout_s:g} s"
            ) from None
        except (OSError, EOFError) as e:
            await self.close()
            raise BlueZCallError("carebeacon.Error.Bus", f"system bus: {e}") from e
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise BlueZCallError(reply.error_name or "unknown error", text)
        return reply.body

    async def _connected(self) -> MessageBus:
        if self._bus is None or not self._bus.connected:
            if self._bus is not None:
                self._bus.disconnect()  # dbus-fast wants this even for a dead bus (file handles)
            self._bus = None
            bus = MessageBus(bus_type=BusType.SYSTEM, auth=_authenticator())
            try:
                await bus.connect()
            except BaseException:
                bus.disconnect()
                raise
            self._bus = bus
        return self._bus


def _info(name: str, props: dict[str, Variant]) -> AdapterInfo:
    def value(key: str, default: Any) -> Any:
        v = props.get(key)
        return default if v is None else v.value

    return AdapterInfo(
        name=name,
        address=str(value("Address", "")),
        powered=bool(value("Powered", False)),
        discovering=bool(value("Discovering", False)),
    )
