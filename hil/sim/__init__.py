"""Simulated radio medium: a private D-Bus system bus and a BlueZ double on it.

from hil.sim.dbus_session import PrivateSystemBus
from hil.sim.bluez import BlueZDouble
"""
