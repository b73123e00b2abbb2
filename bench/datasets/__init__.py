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


def default_root() -> Path:
    """../shared/data/inactivity next to the repository."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "inactivity"


def load_all(root: str | Path | None = None) -> list[Home]:
    """Every data set found under `root` (the inactivity folder), in a fixed order."""
    root = Path(root) if root else default_root()
    return [load(root / name) for name in LOADERS if (root / name).is_dir()]


def load(folder: str | Path) -> Home:
    folder = Path(folder)
    if folder.name not in LOADERS:
        raise ValueError(f"{folder}: no loader for {folder.name!r} (known: {sorted(LOADERS)})")
    return LOADERS[folder.name](folder)
