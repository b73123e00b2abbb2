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

INSTALL = "pip install 'gpiod>=2.1' (libgpiod v2 bindings; docs/hil.md)"


def require_gpiod():
    """The gpiod module if it is the v2 API, else RigUnavailable saying what to install:
    Debian's python3-libgpiod is the v1 API (no request_lines), which Lines cannot drive."""
    from hil.real.rig import RigUnavailable

    try:
        import gpiod
    except ImportError:
        raise RigUnavailable(f"the gpiod Python bindings are missing: {INSTALL}") from None
    if not hasattr(gpiod, "request_lines"):
        raise RigUnavailable(f"gpiod {getattr(gpiod, '__version__', '?')} is the v1 API "
                             f"(Debian's python3-libgpiod?): {INSTALL}")
    return gpiod


class Lines:
    def __init__(self, chip: str, lines: dict[str, tuple[int, bool]],
                 consumer: str = "carebeacon-rig"):
        gpiod = require_gpiod()
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
