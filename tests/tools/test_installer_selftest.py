"""The on-site self-test end to end: each device deployed and provisioned onto the simulated
board by the real tools, then run by the firmware simulator from the /config.json that
provision wrote, heard by the real hub core (keys from the secrets file provision wrote,
durable store, acknowledgements, status file), while `selftest` reads the hub's store and
status as it does on site. The simulated installer does what the prompts say."""

from __future__ import annotations

import shutil

import pytest

from firmware.feedback import NAMES
from firmware.hal import IN_BUTTON, IN_PIR
from hub_testing import MINIMAL_HUB_TOML as HUB_TOML
from tools.installer import records
from tools.installer.deploy import deploy
from tools.installer.provision import DEFAULT_BOARD, provision
from tools.installer.selftest import Env, HubView, selftest
from tools.simboard.hub import SimHub
from tools.simboard.repl import SimBoard

quiet = {"say": lambda s: None}


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory):
    """kind -> (directory with hub.toml, secrets, records, the board's files; device id)."""
    made: dict[str, tuple] = {}
    cache = tmp_path_factory.mktemp("cache")

    def make(kind: str):
        if kind not in made:
            root = tmp_path_factory.mktemp(kind)
            (root / "hub.toml").write_text(HUB_TOML)
            settings = {"summary_min": 5} if kind == "pir" else {}
            with SimBoard(root / "fs") as board:
                deploy(board.port, DEFAULT_BOARD[kind], cache=cache, **quiet)
                rec = provision(board.port, kind, root / "hub.toml", room="hall",
                                settings=settings, records_dir=root / "rec", **quiet)
            made[kind] = (root, rec["device"])
        return made[kind]
    return make


def wrist(t):  # a worn bracelet: small movements
    return ((t // 7) % 40 - 20, (t // 11) % 30 - 15, 1000 + (t // 13) % 20)


class Installer:
    """Does what the prompts say, on the simulated device; answers by its feedback trace."""

    def __init__(self, hub: SimHub, dev, gap_ms: int = 900):
        self.hub, self.dev, self.gap_ms = hub, dev, gap_ms
        self.steps: list[str] = []
        self.pressed_at = 0

    def prompt(self, step: str, text: str) -> None:
        self.steps.append(step)
        now, inputs = self.hub.world.now, self.dev.plat.inputs
        if step == "reset":
            self.dev.power_on()
        elif step == "press3":
            self.pressed_at = now
            for k in range(3):
                inputs[IN_BUTTON].pulse(now + 2000 + k * self.gap_ms, 150)
        elif step == "walk":
            inputs[IN_PIR].pulse(now + 75_000, 2500)

    def ask(self, question: str) -> bool:
        return "TEST_OK" in [NAMES[v] for t, w, v in self.dev.plat.traces
                             if w == "pattern" and t >= self.pressed_at]


def run(tmp_path, site, *, imu=wrist, gap_ms=900, ask=True, **hub_kw):
    root, device = site
    shutil.copytree(root, tmp_path / "site")
    site_dir = tmp_path / "site"
    hub = SimHub(site_dir / "hub.toml", **hub_kw)
    dev = hub.add_device(site_dir / "fs" / "config.json", imu=imu)
    if dev.plat.board.chemistry != "alkaline":
        dev.plat.battery_mv = 3950  # a charged LiPo
    who = Installer(hub, dev, gap_ms)
    env = Env(hub.view(), prompt=who.prompt, ask=who.ask if ask else (lambda q: None),
              sleep=lambda s: hub.run_for(int(s * 1000)))
    hub.run_for(2000)  # the hub is up and has written its status file
    kind = {v: k for k, v in DEFAULT_BOARD.items()}[
        __import__("json").loads((site_dir / "fs" / "config.json").read_text())["board"]]
    rep = selftest(env, device, kind, summary_min=5)
    hub.close()
    return rep, hub, who, site_dir


def checks(rep):
    return {c["name"]: c["ok"] for c in rep["checks"]}


def test_button_passes_through_to_the_platform(tmp_path, provisioned):
    rep, hub, who, site = run(tmp_path, provisioned("button"))
    assert rep["result"] == "pass", rep["checks"]
    assert who.steps == ["reset", "press3", "watch"]
    assert set(checks(rep)) == {"hub knows the device", "authenticated frame", "signal",
                                "battery", "test press", "platform", "device confirmed"}
    assert rep["rssi"] == -63 and rep["battery"] == 90
    assert rep["platform"]["state"] == "delivered" and rep["device_ack"] == "confirmed"
    types = [(ref, ev["type"], ev.get("cancels")) for ref, ev in hub.platform.events]
    sos = [ref for ref, t, _ in types if t == "manual_alarm"]
    assert len(sos) == 1 and (rep["platform"]["ref"], "test", sos[0]) in types
    visit = site / "rec" / "HH-7"
    records.update(visit, rep["device"], selftest=rep)
    table = records.table(visit)
    assert rep["device"] in table and "pass" in table and "-63 dBm" in table
    summary = records.write_summary(visit)
    assert summary["devices"][0]["selftest"] == "pass"


def test_too_slow_presses_are_an_alarm_not_a_test(tmp_path, provisioned):
    rep, hub, who, _ = run(tmp_path, provisioned("button"), gap_ms=3000)
    assert rep["result"] == "fail"
    bad = [c for c in rep["checks"] if not c["ok"]][0]
    assert bad["name"] == "test press" and "ALARM" in bad["detail"]
    assert "hold the button 3 s" in bad["todo"]


def test_without_the_installers_answer_it_is_unconfirmed(tmp_path, provisioned):
    rep, *_ = run(tmp_path, provisioned("button"), ask=False)
    assert rep["result"] == "unconfirmed" and rep["device_ack"] == "not asked"


def test_weak_signal_and_lost_platform_fail_with_what_to_do(tmp_path, provisioned):
    rep, *_ = run(tmp_path, provisioned("button"), rssi=-95)
    assert not checks(rep)["signal"] and rep["result"] == "fail"
    assert "closer" in [c for c in rep["checks"] if c["name"] == "signal"][0]["todo"]


def test_pir_walk_test(tmp_path, provisioned):
    rep, hub, who, _ = run(tmp_path, provisioned("pir"))
    assert rep["result"] == "pass", rep["checks"]
    assert who.steps == ["reset", "walk"]
    assert checks(rep)["movement seen"] and rep["platform"]["state"] == "link up"
    assert not hub.platform.events  # PIR reports stay on the hub


def test_bracelet_shake_then_press(tmp_path, provisioned):
    rep, hub, who, _ = run(tmp_path, provisioned("bracelet"))
    assert rep["result"] == "pass", rep["checks"]
    assert who.steps == ["reset", "shake", "press3", "watch"]
    assert checks(rep)["motion sensor"]


def test_bracelet_with_a_dead_motion_sensor_fails(tmp_path, provisioned):
    rep, *_ = run(tmp_path, provisioned("bracelet"), imu=None)
    assert rep["result"] == "fail" and not checks(rep)["motion sensor"]


def test_hub_must_be_running_and_know_the_device(tmp_path, provisioned):
    root, device = provisioned("button")
    rep = selftest(Env(HubView(tmp_path)), device, "button")
    assert rep["result"] == "fail" and rep["checks"][0]["name"] == "hub running"
    shutil.copytree(root, tmp_path / "site")
    hub = SimHub(tmp_path / "site" / "hub.toml")
    hub.run_for(2000)
    rep = selftest(Env(hub.view()), "0badf00d", "button")
    hub.close()
    assert not checks(rep)["hub knows the device"]
    assert "systemctl restart carebeacon-hub" in rep["checks"][0]["todo"]
