"""The self-test's press step when the installer presses four times: the weekly-test
gesture is exactly three presses (review finding 5), so a fourth keeps the SOS, and the
self-test fails with the alarm to cancel, as for presses too slow.

Same set-up as test_installer_selftest.py (real deploy + provision onto the simulated
board, the real hub core on the simulator's clock)."""

from __future__ import annotations

import shutil

from firmware.hal import IN_BUTTON
from tools.installer.selftest import Env, selftest
from tools.simboard.hub import SimHub

from .test_installer_selftest import Installer, provisioned  # noqa: F401  (fixture)


class FourPresses(Installer):
    def prompt(self, step: str, text: str) -> None:
        super().prompt(step, text)
        if step == "press3":
            assert "exactly three" in text
            self.dev.plat.inputs[IN_BUTTON].pulse(self.pressed_at + 2000 + 3 * self.gap_ms, 150)


def test_a_fourth_press_keeps_the_alarm_and_the_selftest_says_so(tmp_path, provisioned):  # noqa: F811
    root, device = provisioned("button")
    shutil.copytree(root, tmp_path / "site")
    site = tmp_path / "site"
    hub = SimHub(site / "hub.toml")
    dev = hub.add_device(site / "fs" / "config.json")
    who = FourPresses(hub, dev)
    env = Env(hub.view(), prompt=who.prompt, ask=who.ask,
              sleep=lambda s: hub.run_for(int(s * 1000)))
    hub.run_for(2000)
    rep = selftest(env, device, "button", summary_min=5)
    hub.close()
    assert rep["result"] == "fail"
    bad = [c for c in rep["checks"] if not c["ok"]][0]
    assert bad["name"] == "test press" and "ALARM" in bad["detail"]
    assert "more than three" in bad["detail"] and "hold the button 3 s" in bad["todo"]
    types = [ev["type"] for _ref, ev in hub.platform.events]
    assert "manual_alarm" in types and "test" not in types
