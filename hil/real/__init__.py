"""The real backend of the rig: a Raspberry Pi with the device under test (DUT) wired to it.

    console.py   the DUT's serial console (pyserial): its log lines, and IMU samples in
    gpio.py      GPIO lines (libgpiod v2 Python bindings) that press its button, drive its
                 PIR input and switch its power
    rig.py       RealRig / RealSession: the scenario API (hil/rig.py) on that hardware, with
                 the real hub on the Pi's adapter and a local mosquitto as the platform
    device/      MicroPython files for the DUT on a rig only (boot markers, IMU injection)

Written against the documented APIs (pyserial 3.5, gpiod 2.x, BlueZ through the hub); there
is no rig in CI. What runs without one is tested offline (tests/hil/test_real_rig_*.py: the
config, the console on pseudo-terminals, device/ under MicroPython); GPIO, the hub on a real
adapter and a real DUT are NOT run here. Without the hardware, `pytest hil --backend real`
skips with the reason; nothing is ever simulated in its place. docs/hil.md has the wiring.
"""
