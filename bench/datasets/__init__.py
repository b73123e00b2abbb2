"""Loaders for the real-home data sets in ../shared/data/inactivity (see its README).

Each turns one data set into a `stream.Home`; `stream.hub_frames(home)` gives the frames
the hub would receive. Activity labels are kept for evaluation only (absences).
"""

from __future__ import annotations

from pathlib import Path

from bench.datasets import casas, ordonez, vankasteren
from bench.datasets.stream import Home

LOADERS = {casas.FOLDER: casas.load, ordonez.FOLDER: ordonez.load,
           vankasteren.FOLDER: vankasteren.load}
# Other homes of the same two studies, in the same formats, named alike: "ordonez-home-b"
# (OrdonezB_*.txt), "vankasteren-house-a" (houseA-ss.txt ...). Only A and B were seen here.
FAMILIES = {"ordonez-home-": lambda f, x: ordonez.load(f, prefix="Ordonez" + x.upper()),
            "vankasteren-house-": lambda f, x: vankasteren.load(f, house=x.upper())}


def default_root() -> Path:
    """../shared/data/inactivity next to the repository."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "inactivity"


def loader_for(name: str):
    """The loader of a data set folder's name, or None."""
    if name in LOADERS:
        return LOADERS[name]
    for prefix, fn in FAMILIES.items():
        rest = name[len(prefix):]
        if name.startswith(prefix) and len(rest) == 1 and rest.isalpha():
            return lambda folder, fn=fn, x=rest: fn(folder, x)
    return None


def load_all(root: str | Path | None = None, unknown: list[str] | None = None) -> list[Home]:
    """Every data set found under `root` (the inactivity folder), in a fixed order (the known
    ones first, as listed, then the others by name). Other folders no loader reads, or that
    its loader cannot read, are appended to `unknown` if given (else raise), so a caller can
    say they were not evaluated."""
    root = Path(root) if root else default_root()
    names = [n for n in LOADERS if (root / n).is_dir()]
    others = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in LOADERS) \
        if root.is_dir() else []
    homes = [load(root / name) for name in names]
    for name in others:
        if unknown is None:
            homes.append(load(root / name))  # raises: no loader, or one that cannot read it
        elif loader_for(name) is None:
            unknown.append(name)
        else:
            try:
                homes.append(load(root / name))
            except (ValueError, OSError, IndexError) as e:  # a format only guessed at
                unknown.append(f"{name} ({e})")
    return homes


def load(folder: str | Path) -> Home:
    folder = Path(folder)
    fn = loader_for(folder.name)
    if fn is None:
        raise ValueError(f"{folder}: no loader for {folder.name!r} (known: {sorted(LOADERS)}, "
                         f"and {', '.join(p + '<letter>' for p in FAMILIES)})")
    return fn(folder)
