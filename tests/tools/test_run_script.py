"""./run's set-up steps, in a copy of the script with stand-ins on PATH (quick: no apt, no
pip, no real virtualenv).

- Debian packages, for a user whose sudo asks for a password: without a terminal ./run
  prints the one full command that installs every package it needs (it once printed only
  `apt-get update -qq`, and the next ./run stopped at that same line); on a terminal it runs
  sudo itself, which asks for the password.
- a .venv left half-made (bin/python there, pip not: Ctrl-C during ensurepip) is made again
  with --clear instead of failing "No module named pip" on every later run.
The whole ./run (pip, the test suite) is what CI runs through .ci/run."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def script(path: Path, text: str) -> None:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def copy_of_run(tmp: Path) -> tuple[Path, dict]:
    repo, bin_ = tmp / "repo", tmp / "bin"
    repo.mkdir()
    bin_.mkdir()
    shutil.copy2(ROOT / "run", repo / "run")
    shutil.copy2(ROOT / "pyproject.toml", repo / "pyproject.toml")
    script(bin_ / "id", '[ "$1" = "-u" ] && { echo 1000; exit 0; }\nexec /usr/bin/id "$@"\n')
    # sudo with a password: `sudo -n` fails; otherwise (the password typed) it runs, logged
    script(bin_ / "sudo", f'[ "$1" = "-n" ] && {{ echo "sudo: a password is required" >&2; '
                          f'exit 1; }}\necho "$*" >> {tmp}/sudo.log\nexit 0\n')
    # python3 without python3-venv (the Debian default): no ensurepip
    script(bin_ / "py311", '[ "$1" = "-c" ] && [ "$2" = "import venv, ensurepip" ] && exit 1\n'
                           'exec python3 "$@"\n')
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "PYTHON": str(bin_ / "py311")}
    return repo, env


def in_run(repo: Path, env: dict, code: str, **kw) -> subprocess.CompletedProcess:
    """Source the copy of ./run (its functions only) and run `code`."""
    return subprocess.run(["bash", "-c", f"source ./run\n{code}"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=30, **kw)


def test_without_a_terminal_the_one_full_command_is_printed(tmp_path):
    repo, env = copy_of_run(tmp_path)
    wanted = in_run(repo, env, "missing_debian_packages").stdout.split()
    assert "python3-venv" in wanted
    for _attempt in (1, 2):  # the same answer the second time: nothing half-remembered
        r = in_run(repo, env, "install_debian_packages", stdin=subprocess.DEVNULL)
        assert r.returncode == 1, r.stderr
        assert f"sudo apt-get update && sudo apt-get install -y {' '.join(wanted)}" in r.stderr
        assert "./run test again" in r.stderr
    assert not (tmp_path / "sudo.log").exists()


def test_on_a_terminal_sudo_is_run_and_asks_for_the_password(tmp_path):
    repo, env = copy_of_run(tmp_path)
    wanted = in_run(repo, env, "missing_debian_packages").stdout.split()
    controller, terminal = os.openpty()
    try:
        r = in_run(repo, env, "install_debian_packages", stdin=terminal)
    finally:
        os.close(controller)
        os.close(terminal)
    assert r.returncode == 0, r.stderr
    assert "asks for your password" in r.stderr
    log = (tmp_path / "sudo.log").read_text().splitlines()
    assert log == ["apt-get update -qq",
                   "env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                   f"--no-install-recommends {' '.join(wanted)}"]


def test_a_half_made_venv_is_made_again(tmp_path):
    repo, env = copy_of_run(tmp_path)
    (repo / ".venv" / "bin").mkdir(parents=True)
    # what `python3 -m venv .venv` leaves when stopped during ensurepip: python, no pip
    script(repo / ".venv" / "bin" / "python", '[ "$1 $2" = "-m pip" ] && '
                                              '{ echo "No module named pip" >&2; exit 1; }\n')
    fresh = ('[ "$1 $2" = "-m pip" ] && { echo "pip 24.0"; exit 0; }\nexit 0\n')
    script(tmp_path / "bin" / "py311",
           f'echo "$*" >> {tmp_path}/py.log\n'
           '[ "$1 $2 $3 $4" = "-m venv --clear .venv" ] || exit 0\n'
           f"mkdir -p .venv/bin && printf '%s' '#!/bin/sh\n{fresh}' > .venv/bin/python\n"
           "chmod +x .venv/bin/python\n")
    r = in_run(repo, env, "ensure_venv")
    assert r.returncode == 0, r.stderr
    assert "incomplete" in r.stderr
    assert "-m venv --clear .venv" in (tmp_path / "py.log").read_text()
    assert subprocess.run([repo / ".venv/bin/python", "-m", "pip", "--version"]).returncode == 0
    (tmp_path / "py.log").unlink()
    r = in_run(repo, env, "ensure_venv")  # a good venv is left alone
    assert r.returncode == 0 and not (tmp_path / "py.log").exists()
