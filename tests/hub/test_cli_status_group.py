"""`hub status` as docs/install-hub.md says it may be run: by a member of the hub's group, who
may read hub.toml and status.json but not the secrets file (0600, the hub's user's).

Review finding: status loaded the secrets file too and ended with "config error: permission
denied". The operator runs in a forked child with its uid and groups dropped (root needed)."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from test_cli import sample_status

import hub.cli as cli  # imported before dropping privileges

HUB_UID, OPERATOR_UID, GID = 61001, 61002, 61001  # carebeacon, an operator in its group


def as_operator(argv: list[str]) -> tuple[int, str]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            sys.stdout = sys.stderr = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False),
                                                       write_through=True)
            os.setgroups([GID])
            os.setgid(OPERATOR_UID)
            os.setuid(OPERATOR_UID)
            code = cli.main(argv)
        except BaseException as e:
            print("child:", repr(e))
        finally:
            sys.stdout.flush()
            os._exit(code if isinstance(code, int) else 98)
    os.close(w)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="changes uid to play the operator: needs root")
def test_status_as_a_member_of_the_hubs_group():
    # a folder of its own under /tmp: the operator cannot reach pytest's (0700)
    with tempfile.TemporaryDirectory(prefix="carebeacon-status-") as d:
        os.chmod(d, 0o755)
        status_as_operator(Path(d))


def status_as_operator(top: Path) -> None:
    etc, data = top / "etc", top / "data"
    etc.mkdir()
    os.chown(etc, 0, GID)
    os.chmod(etc, 0o750)
    cfg = etc / "hub.toml"
    cfg.write_text('[hub]\nid = "hub-a"\ncounty = "test-county"\nhousehold = "HH-7"\n'
                   f'data_dir = "{data}"\n[platform]\nurl = "mqtt://localhost:1883"\n'
                   '[[devices]]\nid = "0000a1b2"\nkind = "button"\n')
    os.chown(cfg, 0, GID)
    os.chmod(cfg, 0o640)
    sec = etc / "secrets.toml"  # as `device add` leaves it
    sec.write_text('[keys]\n"0000a1b2" = "000102030405060708090a0b0c0d0e0f"\n')
    os.chown(sec, HUB_UID, GID)
    os.chmod(sec, 0o600)
    data.mkdir()
    os.chown(data, HUB_UID, GID)
    os.chmod(data, 0o750)  # StateDirectoryMode
    st = data / "status.json"
    st.write_text(json.dumps(sample_status()))
    os.chown(st, HUB_UID, GID)
    os.chmod(st, 0o640)  # UMask=0027
    rc, text = as_operator(["-c", str(cfg), "status"])
    assert rc == 0 and "platform: connected" in text, f"exit {rc}:\n{text}"
