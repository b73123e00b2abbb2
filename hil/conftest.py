"""The rig's pytest plumbing: one scenario suite (hil/scenarios/), two backends.

    pytest hil                                  # sim backend (also part of ./run test)
    pytest hil --backend real --rig hil/rig.toml   # a Raspberry Pi rig (docs/hil.md)

Fixtures: `rig` (the backend: hil.sim.rig.SimRig or hil.real.rig.RealRig; the real one is
SKIPPED with the reason when its hardware or config is missing, never faked) and
`open_home(kinds, clock=...)` (a fresh home for one scenario; its metrics go into the run
report). A scenario that needs what a backend cannot do raises hil.rig.Unsupported and is
skipped with that reason.

Each run writes runs/<time>-<rig name>/ (report.md, results.json, latency.png); the folder
is named by the rig and printed at the end.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from hil.rig import Unsupported

REPO = Path(__file__).resolve().parents[1]
# The hubs the scenarios start raise on a periodic-task error instead of reporting fault 208
# (hub/daemon.py): a scenario must see a bug.
os.environ["CAREBEACON_RAISE_TASK_ERRORS"] = "1"
_RESULTS: dict[str, dict] = {}
_STATE: dict = {"started": time.time(), "rig": None}


def pytest_addoption(parser):
    g = parser.getgroup("carebeacon rig (hil/)")
    g.addoption("--backend", choices=("sim", "real"), default="sim",
                help="sim: the simulated home (default); real: the hardware rig")
    g.addoption("--rig", default=os.environ.get("CAREBEACON_RIG", str(REPO / "hil" / "rig.toml")),
                help="the rig's config for --backend real (default hil/rig.toml)")
    g.addoption("--run-dir", default=None, help="where the report goes (default runs/<time>-<rig>)")
    g.addoption("--presses", type=int, default=1000, help="presses in the exactly-once scenario")
    g.addoption("--outage-min", type=int, default=60, help="uplink outage length (minutes)")


@pytest.fixture(scope="session")
def rig(request):
    backend = request.config.getoption("--backend")
    if backend == "sim":
        from hil.sim.rig import SimRig

        work = Path(tempfile.mkdtemp(prefix="carebeacon-rig-"))
        r = SimRig(work)
        _STATE["rig"] = r
        yield r
        shutil.rmtree(work, ignore_errors=True)
        return
    from hil.real.rig import RealRig, RigUnavailable

    try:
        r = RealRig.from_config(request.config.getoption("--rig"))
    except RigUnavailable as e:
        pytest.skip(f"real rig not available: {e}")
    _STATE["rig"] = r
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def open_home(rig, request):
    sessions = []

    def make(kinds=("button",), clock: str = "virtual", **kw):
        try:
            s = rig.session(tuple(kinds), clock=clock, **kw)
        except Unsupported as e:
            pytest.skip(str(e))
        sessions.append(s)
        return s

    yield make
    merged = None
    for s in sessions:
        m = s.metrics
        m.clock = m.clock or (s.clock if s.backend == "sim" else "rig")
        d = {**dataclasses.asdict(m), "lost": m.lost}
        if merged is None:
            merged = d
        else:
            for k in ("latencies_ms", "notes"):
                merged[k] += d[k]
            for k in ("expected", "delivered", "duplicates", "lost"):
                merged[k] += d[k]
    try:
        for s in sessions:
            s.close()
    finally:
        _RESULTS.setdefault(request.node.nodeid, {})["metrics"] = merged


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(Unsupported):
        rep.outcome = "skipped"
        rep.longrepr = (str(item.path), item.location[1] or 0,
                        f"Skipped: {call.excinfo.value}")
    if "hil/scenarios" not in item.nodeid:
        return
    r = _RESULTS.setdefault(item.nodeid, {})
    r.setdefault("name", item.name.removeprefix("test_"))
    r["duration_s"] = round(r.get("duration_s", 0) + rep.duration, 2)
    if rep.when == "call" or rep.outcome != "passed":
        if r.get("outcome") in (None, "passed"):
            r["outcome"] = rep.outcome
            if rep.outcome == "skipped" and isinstance(rep.longrepr, tuple):
                r["reason"] = str(rep.longrepr[2]).removeprefix("Skipped: ")
            elif rep.outcome == "failed":
                lines = str(rep.longreprtext).strip().splitlines()
                r["reason"] = (lines[-1] if lines else "failed")[:200]


def pytest_sessionfinish(session, exitstatus):
    results = [r for r in _RESULTS.values() if "outcome" in r]
    if not results:
        return
    from hil.report import write_report

    cfg = session.config
    rig = _STATE["rig"]
    name = getattr(rig, "name", cfg.getoption("--backend"))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(_STATE["started"]))
    run_dir = Path(cfg.getoption("--run-dir") or REPO / "runs" / f"{stamp}-{name}")
    write_report(run_dir, backend=cfg.getoption("--backend"), rig=name, results=results,
                 started=_STATE["started"])
    _STATE["run_dir"] = run_dir


def pytest_terminal_summary(terminalreporter):
    if _STATE.get("run_dir"):
        terminalreporter.write_line(f"rig report: {_STATE['run_dir']}/report.md")
