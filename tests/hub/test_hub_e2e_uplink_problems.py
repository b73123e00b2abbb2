"""End to end: the real hub process when its uplink cannot work for a reason of the hub's own:
TLS files it cannot use, another client with its identity. It keeps scanning, storing and
acknowledging alarms STORED; status.json's uplink section and `hub status` say why; each
problem is logged once.

A bad key used to end the process at start (`ssl.SSLError: KEY_VALUES_MISMATCH` from the
uplink's start, before the radio started): under systemd a restart every 3 s for ever, and no
alarm stored meanwhile. The key here is real: another certificate's key, then a directory (the
kernel refuses to read it, root included), then the right key, picked up without a restart.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/hub: the e2e helpers
from e2e_air import HUB  # noqa: E402
from e2e_home import Home  # noqa: E402
from uplink_testing import Client  # noqa: E402

from hil.sim.wait import wait_for  # noqa: E402
from shared import frame as F  # noqa: E402

BUTTON = 0xA1B2


def problem(st: dict) -> str:
    return st["uplink"].get("problem") or ""


@pytest.mark.heavy  # 10-20 s: the hub's own retry delays (1, 2, 4, 8 s) are fixed
@pytest.mark.timeout(120)
def test_a_hub_with_an_unusable_key_keeps_storing_and_connects_once_it_is_fixed(broker, tmp_path):
    home = Home(broker, tmp_path, start=False)
    try:
        good = broker.tls(HUB)
        key = tmp_path / "tls" / "hub.key"
        key.parent.mkdir()
        shutil.copy(broker.tls("hub-b").key, key)  # another certificate's key
        key.chmod(0o600)
        toml = home.hub.config
        toml.write_text(toml.read_text().replace(f'"{good.key}"', f'"{key}"'))
        check = home.hub.cli("check-config")  # what the unit's ExecStartPre would say
        assert check.returncode == 2
        assert f"platform.key_file {key}: does not match platform.cert_file" in check.stderr

        home.start_hub(online=False)  # the radio scans: the process did not stop
        st = home.hub.wait_status(lambda s: "does not match" in problem(s), 10, "the reason")
        assert not st["uplink"]["connected"]
        assert problem(st).startswith(f"platform.key_file {key}: does not match platform"
                                      f".cert_file {good.cert}")

        dev = home.dev[BUTTON]
        seq = dev.send(F.T_SOS, target=F.ACK_DELIVERED)
        dev.wait_status(seq, F.ACK_STORED)  # on disk and acknowledged to the elder
        home.hub.wait_status(lambda s: dev.ref(seq) in s["pending"]["alarms"], 5, "pending")
        shown = home.hub.cli("status")
        assert shown.returncode == 1
        assert f"platform problem: platform.key_file {key}: does not match" in shown.stdout

        key.unlink()
        key.mkdir()  # unreadable
        home.hub.wait_status(lambda s: "cannot be read: Is a directory" in problem(s), 20,
                             "the new reason")
        key.rmdir()
        shutil.copy(good.key, key)  # fixed: used at the next attempt, no restart
        key.chmod(0o600)
        home.platform.wait_event(dev.ref(seq), timeout=30)
        dev.wait_status(seq, F.ACK_DELIVERED, 10)
        st = home.hub.wait_status(lambda s: s["uplink"]["connected"], 5, "connected")
        assert problem(st) == "" and home.hub.starts == 1 and home.hub.alive

        log = home.hub.log_path.read_text()
        assert log.count("does not match") == 1  # logged once, not per retry
        assert log.count("Is a directory") == 1
        assert "Traceback" not in log
    finally:
        home.close()


@pytest.mark.timeout(60)
def test_another_client_with_the_hubs_identity_is_shown_in_status(broker, tmp_path):
    home = Home(broker, tmp_path)
    clone = None
    try:
        clone = Client(broker, HUB, subscribe=())  # hub-a's certificate: a cloned SD card
        st = home.hub.wait_status(lambda s: "another client" in problem(s), 30, "the takeover")
        assert f"another client uses this hub's identity ({HUB})" in problem(st)
        shown = home.hub.cli("status")
        assert shown.returncode == 1 and "platform problem: another client" in shown.stdout

        dev = home.dev[BUTTON]
        seq = dev.send(F.T_SOS, target=F.ACK_STORED)
        dev.wait_status(seq, F.ACK_STORED)  # the radio and the store carry on
        log = home.hub.log_path.read_text()
        assert log.count("another client is using this hub's identity") == 1
        assert log.count("lost the platform broker") == 1  # the first loss, as any outage
        # the county hears of it too, in the moments the hub holds the connection
        (ev,) = wait_for(lambda: [e for e in home.platform.of_type("fault")
                                  if e["fault"]["code"] == 211], 60, "fault 211")
        assert ev["type"] == "fault" and ev["fault"]["name"] == "identity_in_use"
        assert "certificate" in ev["fault"]["text"]
    finally:
        if clone is not None:
            clone.close()
        home.close()


@pytest.mark.heavy  # the hub's own retry delays, as above
@pytest.mark.timeout(120)
def test_a_hub_whose_key_is_missing_or_shared_at_start_still_runs(broker, tmp_path):
    """`hub run` loads hub.toml with the TLS files' problems as uplink problems: a missing key
    (or one others may read) stopped the process at load, for ever under systemd."""
    home = Home(broker, tmp_path, start=False)
    try:
        good = broker.tls(HUB)
        key = tmp_path / "tls" / "hub.key"
        key.parent.mkdir()
        toml = home.hub.config
        toml.write_text(toml.read_text().replace(f'"{good.key}"', f'"{key}"'))
        check = home.hub.cli("check-config")
        assert check.returncode == 2 and f"platform.key_file: {key}: file not found" in check.stderr

        home.start_hub(online=False)
        st = home.hub.wait_status(lambda s: "cannot be read" in problem(s), 10, "the reason")
        assert not st["uplink"]["connected"]
        dev = home.dev[BUTTON]
        seq = dev.send(F.T_SOS, target=F.ACK_DELIVERED)
        dev.wait_status(seq, F.ACK_STORED)
        shutil.copy(good.key, key)
        key.chmod(0o644)  # readable by all: a finding, not a reason to stop
        home.platform.wait_event(dev.ref(seq), timeout=30)
        dev.wait_status(seq, F.ACK_DELIVERED, 10)
        log = home.hub.log_path.read_text()
        assert f"platform.key_file: {key}: file not found; the hub runs" in log
        assert home.hub.starts == 1 and home.hub.alive and "Traceback" not in log
        assert home.hub.cli("check-config").returncode == 2  # the mode: the unit's journal says
    finally:
        home.close()
