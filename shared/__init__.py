# carebeacon shared core: pure, sans-IO state machines that run unchanged on
# MicroPython (ESP32) and CPython (hub, tools, tests). See docs/shared-core.md.
