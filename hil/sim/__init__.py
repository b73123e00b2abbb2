"""The simulated home (docs/hil.md): the real firmware on simulated boards and a simulated
radio medium, the real hub behind a BlueZ double or on a virtual clock, mosquitto.

    from hil.sim.medium import Medium, Radio          # the air: BLE timing, loss, RSSI
    from hil.sim.home import SimHome                  # rooms, devices, scripted inputs
    from hil.sim.live import LiveHome                 # real time, the hub as its own process
    from hil.sim.hub_sink import VirtualHub           # the hub's core on the virtual clock
    from hil.sim.dbus_session import PrivateSystemBus
    from hil.sim.bluez import BlueZDouble             # bluetoothd for bleak, on that bus
    from hil.sim.broker import Broker                 # mosquitto, mutual TLS, ACL
"""
