"""Loaders for the fall data sets in ../shared/data/falls (see its README).

    from bench.falls import load
    trials = load("sisfall", data_dir, rate_hz=50)     # or "umafall" (the WRIST tag)

Each recording becomes a `Trial`: milli-g ints, interleaved x, y, z, resampled to the
bracelet's rate (bench/falls/resample.py), with its fall or activity type, its subject and,
where the data set labels it, the sample index of the fall onset. A data set is read
straight from its `.tar.xz` (streamed, nothing unpacked) or from an unpacked folder; the
parsed result is cached under ~/.cache/carebeacon/falls (or $XDG_CACHE_HOME), keyed by the
source's size and modification time, so later runs start in a second. Nothing is written
into the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from array import array
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

LOADER_VERSION = 2  # bump when parsing, resampling or the cache layout change (old entries ignored)


@dataclass
class Trial:
    dataset: str  # "SisFall" or "UMAFall"
    subject: str  # "SA01", "SE03" (SisFall), "U01" (UMAFall)
    kind: str  # "fall" or "adl"
    activity: str  # type code: "F01", "D07" (SisFall); "forwardFall", "Walking" (UMAFall)
    trial: int
    rate_hz: int
    xyz: array  # array('h'): x, y, z milli-g, interleaved
    onset: int | None = None  # sample index of the labelled fall onset (SisFall only)
    name: str = ""  # the source file name
    gaps: int = 0  # holes in the recording bridged by interpolation (UMAFall)

    @property
    def n(self) -> int:
        return len(self.xyz) // 3

    @property
    def is_fall(self) -> bool:
        return self.kind == "fall"


def default_data_dir() -> Path:
    """../shared/data next to the repository."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "carebeacon" / "falls"


def find_sources(data_dir: str | Path, base: str) -> list[Path]:
    """Every part of data set `base` ("sisfall", "umafall"): DATA/falls/<base>[-part].tar.xz
    or an unpacked folder of that name (the archive wins when both are there), e.g. the dev
    subset here and a test subset beside it. DATA may also be the falls folder itself or one
    archive or folder directly."""
    d = Path(data_dir)

    def part(p: Path) -> str | None:  # "sisfall-dev" for sisfall-dev.tar.xz or a folder
        stem = p.name[: -len(".tar.xz")] if p.name.endswith(".tar.xz") else p.name
        if stem != base and not stem.startswith(base + "-"):
            return None
        return stem if p.is_dir() or p.name.endswith(".tar.xz") else None

    if d.exists() and part(d):
        return [d]
    for cand in (d, d / "falls"):
        if not cand.is_dir():
            continue
        found: dict[str, Path] = {}
        for p in sorted(cand.iterdir()):
            stem = part(p)
            if stem and (stem not in found or p.name.endswith(".tar.xz")):
                found[stem] = p
        if found:
            return [found[k] for k in sorted(found)]
    return []


def iter_files(source: Path, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """(path inside the data set, content) for every file whose path `want`s, from a
    .tar.xz (streamed) or a folder. Paths use '/' and are relative to the source."""
    if source.is_dir():
        for p in sorted(source.rglob("*")):
            rel = p.relative_to(source).as_posix()
            if p.is_file() and want(rel):
                yield rel, p.read_bytes()
        return
    xz = shutil.which("xz") if source.name.endswith(".xz") else None
    if xz is None:
        with tarfile.open(source, "r:*") as tar:
            yield from _members(tar, want)
        return
    # xz in its own process: decompression (~15 s for SisFall) overlaps the parsing.
    with subprocess.Popen([xz, "-dc", str(source)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                yield from _members(tar, want)
        finally:
            proc.stdout.close()
            proc.kill()


def _members(tar: tarfile.TarFile, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    for member in tar:
        if member.isfile() and want(member.name):
            f = tar.extractfile(member)
            if f is not None:
                yield member.name, f.read()


def _cache_path(dataset: str, source: Path, rate_hz: int,
                subjects: frozenset[str] | None) -> Path:
    st = source.stat()
    who = ",".join(sorted(subjects)) if subjects is not None else "*"
    key = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{rate_hz}|{who}|{LOADER_VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / f"{dataset}-{rate_hz}hz-{digest}.bin"


@dataclass
class Skipped:
    """A file of the data set that cannot be used, yielded by a loader instead of a Trial so
    that one bad recording does not stop the evaluation: its name and why are reported."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def _write_cache(path: Path, trials: list[Trial], skipped: list[Skipped]) -> None:
    meta = [
        {k: getattr(t, k) for k in ("dataset", "subject", "kind", "activity", "trial",
                                      "rate_hz", "onset", "name", "gaps")} | {"n3": len(t.xyz)}
        for t in trials
    ]
    head = {"trials": meta, "skipped": [[k.name, k.reason] for k in skipped]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(json.dumps(head).encode() + b"\n")
            for t in trials:
                f.write(t.xyz.tobytes())
        os.replace(tmp, path)
    except OSError:
        pass  # read-only home: parse every time


def _read_cache(path: Path) -> tuple[list[Trial], list[Skipped]] | None:
    try:
        with open(path, "rb") as f:
            head = json.loads(f.readline())
            trials = []
            for m in head["trials"]:
                xyz = array("h")
                xyz.frombytes(f.read(2 * m.pop("n3")))
                trials.append(Trial(xyz=xyz, **m))
            return trials, [Skipped(name, why) for name, why in head["skipped"]]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def load(dataset: str, data_dir: str | Path | None = None, rate_hz: int = 50,
         subjects: Collection[str] | None = None, use_cache: bool = True,
         skipped: list[Skipped] | None = None) -> list[Trial]:
    """Trials of `dataset` ("sisfall" or "umafall") at `rate_hz`, sorted by file name; only
    those of `subjects` if given (then the others are not even parsed). Files that cannot be
    used are left out and, if `skipped` is given, appended to it (name and reason)."""
    from bench.falls import sisfall, umafall

    mods = {"sisfall": sisfall, "umafall": umafall}
    if dataset not in mods:
        raise ValueError(f"unknown data set {dataset!r} (known: {sorted(mods)})")
    mod = mods[dataset]
    data = data_dir or default_data_dir()
    sources = find_sources(data, mod.BASE)
    if not sources:
        raise FileNotFoundError(f"no {mod.BASE}*.tar.xz (or folder) under {data}")
    wanted = frozenset(subjects) if subjects is not None else None
    trials: dict[str, Trial] = {}
    for source in sources:
        got, bad = _load_source(mod, dataset, source, rate_hz, wanted, use_cache)
        for t in got:
            trials.setdefault(t.name, t)  # a trial in two parts is the same recording
        if skipped is not None:
            skipped.extend(bad)
    return sorted(trials.values(), key=lambda t: t.name)


def _load_source(mod, dataset: str, source: Path, rate_hz: int, wanted: frozenset[str] | None,
                 use_cache: bool) -> tuple[list[Trial], list[Skipped]]:
    full = _cache_path(dataset, source, rate_hz, None)
    part = _cache_path(dataset, source, rate_hz, wanted)
    if use_cache:
        for path in (full, part):
            cached = _read_cache(path)
            if cached is not None:
                trials, bad = cached
                return [t for t in trials if wanted is None or t.subject in wanted], bad
    trials, bad = [], []
    for item in mod.load_source(source, rate_hz, wanted):
        (bad if isinstance(item, Skipped) else trials).append(item)
    trials.sort(key=lambda t: t.name)
    if use_cache:
        _write_cache(part, trials, bad)
    return trials, bad
