"""End to end: the real hub process with a connection hub.toml forbids: plain MQTT (mqtt://) to
another machine, or TLS files under a plain URL. check-config (and every other loader) refuses
it; `hub run` blocks the uplink instead: it never connects (no alarm in clear, no TLS file
silently left out), says why in status.json and `hub status`, logs it once, and scans, stores
and acknowledges alarms STORED meanwhile. Fixed in hub.toml, the next start connects and sends
them.

They used to stop `hub run` at load (commit ffc9b8d): under systemd's Restart=always a restart
every 3 s, and no alarm stored, for configs that ran before (mqtt:// over a VPN, with TLS files).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/hub: the e2e helpers
from e2e_air import HUB, SimDevice  # noqa: E402
from e2e_home import Home  # noqa: E402

from shared import frame as F  # noqa: E402

BUTTON = 0xA1B2
# paho gives up a TCP connect after 5 s: an attempt that was made is in the log by then
ATTEMPT_LOGGED_S = 7
BLOCKED = "nothing is sent to the platform until hub.toml is fixed and the hub restarted"


def problem(st: dict) -> str:
    return st["uplink"].get("problem") or ""


def set_url(home: Home, url: str, *, tls: bool) -> str:
    """hub.toml's platform.url := url, with or without its TLS lines; hub.toml's old text."""
    toml = home.hub.config
    old = toml.read_text()
    lines = [f'url = "{url}"' if ln.startswith("url = ") else ln for ln in old.splitlines()
             if tls or not ln.startswith(("ca_file", "cert_file", "key_file"))]
    toml.write_text("\n".join(lines) + "\n")
    return old


def first_run_log(home: Home) -> str:
    return home.hub.log_path.read_text().split("---- start 1 ----")[0]


def runs_blocked(home: Home, reason: str) -> tuple[SimDevice, int]:
    """The hub started with hub.toml blocking its uplink: it stores and acknowledges an SOS,
    says `reason` (and what to do) in status and `hub status`, and never tries to connect;
    the device and the SOS's seq."""
    home.start_hub(online=False)  # the radio scans: the process did not stop
    st = home.hub.status()  # the block is known at start, not after failed attempts
    assert problem(st) == f"{reason}; {BLOCKED}" and not st["uplink"]["connected"]

    dev = home.dev[BUTTON]
    seq = dev.send(F.T_SOS, target=F.ACK_DELIVERED)
    dev.wait_status(seq, F.ACK_STORED)  # on disk and acknowledged to the elder
    st = home.hub.wait_status(lambda s: dev.ref(seq) in s["pending"]["alarms"], 5, "pending")
    assert problem(st) == f"{reason}; {BLOCKED}"
    shown = home.hub.cli("status")
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert f"platform problem: {reason}; {BLOCKED}" in shown.stdout

    home.hub.wait_status(lambda s: s["uptime_s"] >= ATTEMPT_LOGGED_S, ATTEMPT_LOGGED_S + 5,
                         "time for an attempt to have been logged")
    log = first_run_log(home)
    assert log.count(f"ERROR carebeacon.config: {reason}; the hub runs, stores and "
                     f"acknowledges alarms, but {BLOCKED}") == 1
    assert log.count(reason) == 1  # once, not per retry: there are none
    assert "carebeacon.uplink" not in log  # no attempt, failed or not, and no outage
    assert "NO TLS" not in log  # nothing is sent, in clear or otherwise
    assert home.platform.states == [] and "Traceback" not in log
    return dev, seq


def connects_once_fixed(home: Home, old_toml: str, dev: SimDevice, seq: int) -> None:
    assert home.hub.stop() == 0  # an orderly stop without an uplink
    home.hub.config.write_text(old_toml)
    assert home.hub.cli("check-config").returncode == 0
    home.start_hub()  # waits for the state "connected" at the platform
    home.platform.wait_event(dev.ref(seq), timeout=20)  # the alarm stored while blocked
    dev.wait_status(seq, F.ACK_DELIVERED, 10)
    st = home.hub.wait_status(lambda s: s["uplink"]["connected"], 5, "connected")
    assert problem(st) == ""


@pytest.mark.timeout(90)
def test_plain_mqtt_to_another_machine_blocks_the_uplink_not_the_hub(broker, tmp_path):
    home = Home(broker, tmp_path, start=False)
    try:
        url = "mqtt://192.0.2.1:1883"  # TEST-NET: were an attempt made, it would reach nobody
        old = set_url(home, url, tls=False)
        toml = home.hub.config
        reason = (f"{toml}: platform.url: '{url}': plain MQTT (no TLS) only to this machine "
                  "(localhost, 127.0.0.1, ::1, *.localhost); the platform needs mqtts:// and "
                  "the TLS files")
        check = home.hub.cli("check-config")  # what the unit's ExecStartPre says
        assert check.returncode == 2 and reason in check.stderr, check.stderr

        dev, seq = runs_blocked(home, reason)
        connects_once_fixed(home, old, dev, seq)
    finally:
        home.close()


@pytest.mark.timeout(90)
def test_tls_files_under_a_plain_url_block_the_uplink_not_the_hub(broker, tmp_path):
    """A one-letter typo (mqtt:// for mqtts://): the files are not dropped and the alarms not
    sent in clear, here to a listener on this machine that would accept the connection."""
    home = Home(broker, tmp_path, start=False)
    plain = socket.create_server(("127.0.0.1", 0))
    plain.setblocking(False)
    try:
        url = f"mqtt://127.0.0.1:{plain.getsockname()[1]}"
        old = set_url(home, url, tls=True)
        toml = home.hub.config
        reason = (f"{toml}: platform.ca_file: '{broker.tls(HUB).ca}' is set, but url '{url}' is"
                  " not TLS and would ignore it (alarms unencrypted, to any broker): use "
                  "mqtts:// or remove ca_file, cert_file and key_file")
        check = home.hub.cli("check-config")
        assert check.returncode == 2 and reason in check.stderr, check.stderr

        dev, seq = runs_blocked(home, reason)
        with pytest.raises(BlockingIOError):
            plain.accept()  # nobody came, in ATTEMPT_LOGGED_S and more
        connects_once_fixed(home, old, dev, seq)
    finally:
        plain.close()
        home.close()

