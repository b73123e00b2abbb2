"""The bracelet's motion-sensor check when the hub missed the bracelet's first adverts: the
retry of its start-up FAULT 4 lands after the 5 s the check first waits, and the self-test
must still fail (it looks at the FAULT rows again at the end).

Same set-up as test_installer_selftest.py (real deploy + provision onto the simulated board,
the real hub core on the simulator's clock); here the air loses the bracelet's FAULT adverts
for a while after its reset."""

from __future__ import annotations

import json
import shutil

from shared import frame as F
from tools.installer.provision import DEFAULT_BOARD
from tools.installer.selftest import Env, selftest
from tools.simboard.hub import SimHub

from .test_installer_selftest import Installer, provisioned  # noqa: F401  (fixture)


class LossyHub(SimHub):
    """Hears nothing of the device's FAULT frames until `deaf_until` (virtual ms)."""

    deaf_until = 0
    dropped = 0

    def advertise(self, device, adv, connectable):
        data = F.frame_from_adv(adv)
        if data is not None and data[9] == F.T_FAULT and self.world.now < self.deaf_until:
            self.dropped += 1
            return
        super().advertise(device, adv, connectable)


def run_bracelet(site_dir, device, deaf_ms):
    hub = LossyHub(site_dir / "hub.toml")
    dev = hub.add_device(site_dir / "fs" / "config.json", imu=None)  # the IMU does not answer
    dev.plat.battery_mv = 3950
    who = Installer(hub, dev)

    def prompt(step, text):
        if step == "reset":
            hub.deaf_until = hub.world.now + deaf_ms
        who.prompt(step, text)
    env = Env(hub.view(), prompt=prompt, ask=who.ask, sleep=lambda s: hub.run_for(int(s * 1000)))
    hub.run_for(2000)
    assert json.loads((site_dir / "fs" / "config.json").read_text())["board"] == \
        DEFAULT_BOARD["bracelet"]
    rep = selftest(env, device, "bracelet", summary_min=5)
    hub.close()
    return rep, hub


def test_a_late_imu_fault_still_fails_the_bracelet(tmp_path, provisioned):  # noqa: F811
    root, device = provisioned("bracelet")
    shutil.copytree(root, tmp_path / "site")
    rep, hub = run_bracelet(tmp_path / "site", device, deaf_ms=12_000)
    assert hub.dropped, "the air lost no FAULT advert: the scenario did not happen"
    motion = [c for c in rep["checks"] if c["name"] == "motion sensor"]
    assert motion and not motion[0]["ok"], rep["checks"]
    assert "repair" in motion[0]["todo"] and rep["result"] == "fail"
