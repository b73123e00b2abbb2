"""GPIO lines of the rig (libgpiod v2 Python bindings, `pip install gpiod>=2.1`).

    lines = Lines("/dev/gpiochip0", {"button": (17, True), "pir": (27, True), "power": (22, True)})
    lines.set("power", True); lines.pulse("button", 150); lines.close()

Each name maps to (offset, active_high): the logical ACTIVE is "button pressed", "PIR output
high", "DUT powered". The kernel applies the polarity (LineSettings.active_low), so the
rest of the rig only says what it means. Pulses run on timers: a scenario's press returns
at once and the hold happens in real time, like the sim's scripted inputs.

Wiring (docs/hil.md): the button line drives an NPN/optocoupler across the DUT's button
(the DUT keeps its own pull-up); the PIR line drives the DUT's PIR input through 1 kOhm in
place of the sensor; the power line drives a load switch or relay in the DUT's supply.
"""

from __future__ import annotations

import threading


class Lines:
    def __init__(self, chip: str, lines: dict[str, tuple[int, bool]],
                 consumer: str = "carebeacon-rig"):
        import gpiod
        from gpiod.line import Direction, Value

        self._Value = Value
        self.offsets = {name: off for name, (off, _hi) in lines.items()}
        config = {off: gpiod.LineSettings(direction=Direction.OUTPUT, active_low=not hi,
                                          output_value=Value.INACTIVE)
                  for off, hi in lines.values()}
        self._req = gpiod.request_lines(chip, consumer=consumer, config=config)
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()

    def set(self, name: str, active: bool) -> None:
        v = self._Value.ACTIVE if active else self._Value.INACTIVE
        with self._lock:
            self._req.set_value(self.offsets[name], v)

    def pulse(self, name: str, ms: int, delay_ms: int = 0) -> None:
        """ACTIVE for ms, starting delay_ms from now (returns at once)."""
        def on():
            self.set(name, True)
            self._later(ms, lambda: self.set(name, False))
        if delay_ms:
            self._later(delay_ms, on)
        else:
            on()

    def _later(self, ms: int, fn) -> None:
        t = threading.Timer(ms / 1000, fn)
        t.daemon = True
        self._timers = [x for x in self._timers if x.is_alive()] + [t]
        t.start()

    def close(self) -> None:
        for t in self._timers:
            t.cancel()
        for name in self.offsets:
            if name != "power":
                self.set(name, False)
        self._req.release()
