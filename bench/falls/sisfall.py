"""SisFall v1.0 (Sucerquia, Lopez, Vargas-Bonilla, Sensors 2017): a waist-worn device.

Files: ``<code>_<subject>_R<nn>.txt``, one trial each, 200 Hz, nine comma-separated columns
per row ending in ';'. Columns 1-3 are the ADXL345 accelerometer (13 bits, +-16 g: 32/8192 g
= 1/256 g per count, per the data set's Readme.txt); the gyroscope and the second
accelerometer (MMA8451Q, +-8 g, saturates in hard falls) are not used.

Labels (``labels/<subject>/<same name>``, one integer per sample, from a third party):
checked against the data on SA01-SA15 (bench/falls/README in docs/fall-detection.md):
- 2 marks the fall itself: one contiguous run per fall trial (median 0.38 s) that holds
  the trial's largest |a| in 1117 of 1125 fall trials; its first sample is taken as the
  **fall onset** (the peak follows it by a median 0.15 s).
- 1 marks phases around the fall (after it in 1124 trials, before it in 318) and also
  parts of activities (D11, D13, D14, D18, D19): not fall-specific, not used.
A trial without labels (the five D17_SE15 files filed under SA15) has no onset.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from pathlib import Path

from bench.falls import Skipped, Trial, iter_files
from bench.falls.resample import decimate, index_at, resample

BASE = "sisfall"  # sisfall-dev.tar.xz here; any sisfall-<part> beside it is read too
RATE_HZ = 200
MG_PER_COUNT = 1000 / 256  # ADXL345 +-16 g, 13 bits: (2 * 16 g) / 2**13 per count
ONSET_LABEL = 2
_NAME = re.compile(r"(?:^|/)([DF]\d\d)_(S[AE]\d\d)_R(\d\d)\.txt$")

ACTIVITIES = {  # from the data set's Readme.txt, shortened
    "D01": "walking slowly", "D02": "walking quickly", "D03": "jogging slowly",
    "D04": "jogging quickly", "D05": "stairs up/down slowly", "D06": "stairs up/down quickly",
    "D07": "sit half-height chair slowly", "D08": "sit half-height chair quickly",
    "D09": "sit low chair slowly", "D10": "sit low chair quickly",
    "D11": "try to get up, collapse into chair", "D12": "sit, lie down slowly, sit again",
    "D13": "sit, lie down quickly, sit again", "D14": "lying: back to side and back",
    "D15": "bend at the knees, get up", "D16": "bend without knees, get up",
    "D17": "get into a car, out again", "D18": "stumble while walking",
    "D19": "gentle jump (reach high object)",
    "F01": "forward, walking, slip", "F02": "backward, walking, slip",
    "F03": "lateral, walking, slip", "F04": "forward, walking, trip",
    "F05": "forward, jogging, trip", "F06": "vertical, walking, faint",
    "F07": "walking, faint, hands on table", "F08": "forward, getting up",
    "F09": "lateral, getting up", "F10": "forward, sitting down",
    "F11": "backward, sitting down", "F12": "lateral, sitting down",
    "F13": "forward, seated, faint", "F14": "backward, seated, faint",
    "F15": "lateral, seated, faint",
}


def parse_name(path: str) -> tuple[str, str, int] | None:
    """(code, subject, trial) from a trial's file name, or None if it is not one."""
    m = _NAME.search(path)
    return (m.group(1), m.group(2), int(m.group(3))) if m else None


def parse_counts(text: str, every: int = 1) -> tuple[list[int], list[int], list[int]]:
    """ADXL345 x, y, z counts of every `every`-th row (row 0 first)."""
    xs: list[int] = []
    ys: list[int] = []
    zs: list[int] = []
    rows = text.split("\n")
    while rows and not rows[-1].strip():
        rows.pop()
    for row in rows[::every]:
        f = row.split(",", 3)
        if len(f) < 4:
            raise ValueError(f"SisFall row with fewer than 4 columns: {row!r}")
        xs.append(int(f[0]))
        ys.append(int(f[1]))
        zs.append(int(f[2]))
    return xs, ys, zs


def parse_labels(text: str) -> list[int]:
    return [int(v) for v in text.split()]


def onset_ms(labels: list[int]) -> float | None:
    """Time of the first sample labelled 2 (the fall), ms from the trial start."""
    for i, v in enumerate(labels):
        if v == ONSET_LABEL:
            return i * 1000 / RATE_HZ
    return None


def to_mg(counts: list[int]) -> list[int]:
    return [round(c * MG_PER_COUNT) for c in counts]


def make_trial(name: str, data: str, labels: str | None, rate_hz: int) -> Trial:
    parsed = parse_name(name)
    if parsed is None:
        raise ValueError(f"not a SisFall trial name: {name}")
    code, subject, rep = parsed
    if not data.strip():
        raise ValueError("no samples")
    if RATE_HZ % rate_hz == 0:  # 200 -> 100, 50, 25 Hz: every k-th row (= resample there)
        xs, ys, zs = parse_counts(data, RATE_HZ // rate_hz)
        xyz = decimate([v for r in zip(to_mg(xs), to_mg(ys), to_mg(zs)) for v in r], 1)
    else:
        xs, ys, zs = parse_counts(data)
        t = [i * 1000 / RATE_HZ for i in range(len(xs))]
        xyz = resample(t, to_mg(xs), to_mg(ys), to_mg(zs), rate_hz)
    trial = Trial("SisFall", subject, "fall" if code.startswith("F") else "adl", code, rep,
                  rate_hz, xyz, None, Path(name).name)
    if labels is not None:
        set_onset(trial, onset_ms(parse_labels(labels)))
    return trial


def set_onset(trial: Trial, ms: float | None) -> None:
    if ms is not None and trial.is_fall:
        trial.onset = index_at(ms, 0.0, trial.rate_hz)


def load_source(source: Path, rate_hz: int,
                subjects: Collection[str] | None = None) -> Iterable[Trial | Skipped]:
    """The trials in a SisFall archive or folder (labels matched by file name), only those
    of `subjects` if given."""

    def want(path: str) -> bool:
        parsed = parse_name(path)
        return parsed is not None and (subjects is None or parsed[1] in subjects)

    trials: dict[str, Trial] = {}
    onsets: dict[str, float | None] = {}
    for path, content in iter_files(source, want):
        name = Path(path).name
        text = content.decode("ascii", "replace")
        try:  # one bad recording must not stop the evaluation: it is reported instead
            if "labels" in Path(path).parts:
                onsets[name] = onset_ms(parse_labels(text))
            else:
                trials[name] = make_trial(name, text, None, rate_hz)
        except ValueError as e:
            yield Skipped(("labels/" if "labels" in Path(path).parts else "") + name,
                          str(e) + ("; the trial is scored without an onset"
                                    if "labels" in Path(path).parts else ""))
    for name in sorted(trials):
        set_onset(trials[name], onsets.get(name))
        yield trials[name]
