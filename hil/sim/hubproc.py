"""The real hub as its own process: `python -m hub -c hub.toml run`.

    hub = HubProcess(workdir, config_path, bus_address=bus.address)   # None: the real system bus
    hub.start().wait_ready(); ...; hub.kill9(); hub.start().wait_ready(); hub.stop()
    hub.wait_status(lambda st: st["uplink"]["connected"]); hub.cli("status", "--json")

It runs in its own session (process group), so a terminal's Ctrl-C reaches only whoever
started it, which then stops it in order; `stop()` is SIGTERM (the hub's orderly shutdown),
then SIGKILL to the whole group if it hangs. Its log goes to workdir/hub.log. Readiness and
health come from the status file the hub writes every 2 s (data/status.json).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from hil.sim.wait import wait_for

REPO = Path(__file__).resolve().parents[2]


class HubProcess:
    def __init__(self, workdir: Path | str, config: Path | str, *, bus_address: str | None = None,
                 verbose: bool = False):
        self.dir = Path(workdir)
        self.config = Path(config)
        self.bus_address = bus_address
        self.verbose = verbose
        self.data = self.config.parent / "data"
        self.log_path = self.dir / "hub.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.bus_address:
            env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address
        return env

    def start(self) -> HubProcess:
        assert not self.alive, "the hub is running"
        args = [sys.executable, "-m", "hub", "-c", str(self.config), "run"]
        if self.verbose:
            args.append("-v")
        with open(self.log_path, "a") as log:
            log.write(f"---- start {self.starts} ----\n")
            log.flush()
            self.proc = subprocess.Popen(args, cwd=REPO, env=self.env(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def status(self) -> dict | None:
        """This process's last status.json, None before its first."""
        try:
            st = json.loads((self.data / "status.json").read_text())
        except (OSError, ValueError):
            return None
        return st if self.proc and st.get("pid") == self.proc.pid else None

    def wait_status(self, pred, timeout: float = 10.0, what: str = "a hub status") -> dict:
        """This process's first status satisfying `pred`; RuntimeError with the log tail if
        the hub exits meanwhile."""
        def found():
            if not self.alive:
                raise RuntimeError(f"the hub exited ({self.proc.returncode}):\n{self.log_tail()}")
            st = self.status()
            return st if st and pred(st) else None
        try:
            return wait_for(found, timeout, what, 0.05)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; hub log:\n{self.log_tail()}") from None

    def wait_ready(self, timeout: float = 20.0) -> dict:
        """Until the hub's radio scans (status 'ok')."""
        return self.wait_status(lambda st: st["radio"]["status"] == "ok", timeout,
                                "the hub to start scanning")

    def cli(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
        """`python -m hub -c hub.toml ARGS` beside the running hub (same config, same bus)."""
        return subprocess.run([sys.executable, "-m", "hub", "-c", str(self.config), *args],
                              cwd=REPO, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)

    def kill9(self) -> None:
        """A crash: SIGKILL to the hub's process group, nothing runs its shutdown."""
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (orderly: offline state to the platform, store closed); the exit code. A hub
        still running after `timeout` s is killed (SIGKILL to its group) and TimeoutError
        raised: ignoring SIGTERM is a bug to report, not another way to stop."""
        if self.proc is None:
            return None
        hung = False
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                hung = True
            except ProcessLookupError:
                return self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # also anything it left in its group
        code = self.proc.wait(10)
        if hung:
            raise TimeoutError(f"the hub ignored SIGTERM for {timeout} s and was killed:\n"
                               f"{self.log_tail()}")
        return code

    def log_tail(self, n: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
