"""`./run demo`'s main job, driven through its REAL interactive console in a terminal (tmux):
a press reaches the platform, the operator's acknowledgement comes back to the button as
HELP, and Ctrl-C stops everything the demo started, leaving nothing running."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _procs_mentioning(text: str) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                found.append(f"{d.name}: {cmd.strip()}")
    return found


class Terminal:
    """A private tmux server (it inherits this environment) running one command."""

    def __init__(self, tmp: Path, command: str):
        if not shutil.which("tmux"):
            pytest.fail("tmux is needed for this test: apt-get install tmux (./run test does)")
        self.sock = f"cb-demo-{os.getpid()}"
        self.log = tmp / "demo.log"
        self._tmux("new-session", "-d", "-s", "demo", "-x", "160", "-y", "50",
                   f"{command} --log {self.log}")

    def _tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.sock, *args], cwd=ROOT, env=os.environ,
                              capture_output=True, text=True, timeout=10)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "demo", *keys)

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            time.sleep(0.1)
        screen = self._tmux("capture-pane", "-p", "-t", "demo").stdout
        raise AssertionError(f"no {pattern!r} within {timeout} s\nlog:\n{self.text()}\n"
                             f"screen:\n{screen}")

    @property
    def running(self) -> bool:
        return self._tmux("has-session", "-t", "demo").returncode == 0

    def close(self) -> None:
        self._tmux("kill-server")


@pytest.mark.timeout(120)
def test_demo_press_ack_and_ctrl_c_in_a_terminal(tmp_path):
    term = Terminal(tmp_path, f"exec {sys.executable} -m tools.demo")
    try:
        term.wait_for(r"ready: press a key", 60)
        work = term.wait_for(r"work dir (\S+)", 1).group(1)
        pids = {k: int(v) for k, v in re.findall(r"(\S+) pid (\d+)", term.wait_for(
            r"started: .*", 1).group(0))}
        assert set(pids) == {"hub", "mosquitto", "dbus-daemon"} and all(map(_alive,
                                                                          pids.values()))
        term.keys("p")
        m = term.wait_for(r"platform +ALARM manual_alarm from button \(bedroom\) +(\S+) +"
                          r"press -> platform (\d+) ms", 15)
        assert int(m.group(2)) < 2000, m.group(0)
        term.wait_for(r"button +light/sound RECEIVED", 10)
        term.keys("a")
        term.wait_for(rf"operator +acknowledges {re.escape(m.group(1))}", 5)
        term.wait_for(r"button +light/sound HELP: .*HELP IS ON THE WAY", 60)
        term.keys("C-c")
        term.wait_for(r"stopped; nothing left running", 60)
        deadline = time.monotonic() + 15
        while term.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not term.running, "the demo did not exit after Ctrl-C"
        assert not [k for k, p in pids.items() if _alive(p)], "a child outlived the demo"
        assert not _procs_mentioning(work), "a process still uses the demo's work dir"
        assert not Path(work).exists(), "the demo's work dir was not removed"
    finally:
        term.close()


def test_the_console_shows_a_faults_text_and_calls_an_alarm_priority_fault_an_alarm():
    from tools.demo_view import describe_event

    base = {"ref": "hub-a:00000000:7", "type": "fault", "priority": 4}
    quiet = describe_event({**base, "fault": {"code": 210, "name": "sensor_coverage",
                                              "text": "add PIRs where the resident sits"}})
    assert quiet == ("fault sensor_coverage from the hub  hub-a:00000000:7: add PIRs where the "
                     "resident sits")
    loud = describe_event({**base, "priority": 1, "device": {"kind": "button", "room": "hall"},
                           "fault": {"code": 209, "name": "seq_reused", "text": "call the elder"}})
    assert loud.startswith("ALARM fault seq_reused from button (hall)") and "call the elder" in loud
