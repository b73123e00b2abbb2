"""The simulated air (hil/sim/medium.py) with the real firmware on it: timing, propagation,
connections, and the pieces of the rig that need no hardware (report, PNG, real backend's
refusal to run without its rig)."""

from __future__ import annotations

import statistics
import struct
import zlib

import pytest

from hil.sim.home import SimHome
from hil.sim.medium import Medium, Radio


class Ear:
    """A sink that records what the hub's scanner hears: (time, device, rssi)."""

    scanning = True

    def __init__(self, medium: Medium):
        self.medium = medium
        self.log: list[tuple[float, str, int]] = []

    def heard(self, device, address, adv, rssi) -> None:
        self.log.append((self.medium.now, device.plat.name, rssi))


def _home(radio: Radio, *rooms: str) -> tuple[SimHome, Ear]:
    home = SimHome(Medium(radio), seed=radio.seed)
    ear = Ear(home.medium)
    home.medium.sink = ear
    for k, room in enumerate(rooms):
        home.add(f"b{k}", "button", room=room, device_id=0x100 + k)
    return home, ear


def test_first_advert_waits_for_boot_and_ble_then_comes_every_interval():
    home, ear = _home(Radio(seed=3, loss=0.0), "hall")
    home.world.run_for(1500)
    first = ear.log[0][0]
    boot, ble = home.devs["b0"].plat.board.boot_ms, home.devs["b0"].plat.board.energy["ble_on_ms"]
    assert boot + ble <= first <= boot + ble + 10 + 1 + 1  # + advDelay + report
    gaps = [b[0] - a[0] for a, b in zip(ear.log, ear.log[1:], strict=False)]
    # a heartbeat is routine: 100 ms + advDelay (a retransmission restarts the run sooner)
    assert 100 <= statistics.median(gaps) <= 111, gaps


def test_rssi_falls_with_distance_and_walls_and_out_of_range_is_never_heard():
    home, ear = _home(Radio(seed=5, loss=0.0), "hall", "bedroom", "garden")
    home.leave("b2")
    home.world.run_for(3000)
    med = {n: statistics.median(r for _t, d, r in ear.log if d == n) for n in ("b0", "b1")}
    assert med["b0"] > med["b1"] + 10  # 1 m in the hall vs 5 m and two walls
    assert not [x for x in ear.log if x[1] == "b2"]


def test_scan_duty_cycle_and_loss_thin_out_what_is_heard():
    counts = {}
    for window, loss in ((11.25, 0.0), (5.625, 0.0), (11.25, 0.5)):
        home, ear = _home(Radio(seed=7, scan_window_ms=window, loss=loss), "hall")
        home.world.run_for(1400)
        counts[(window, loss)] = len(ear.log)
    full = counts[(11.25, 0.0)]
    assert 0.3 * full < counts[(5.625, 0.0)] < 0.7 * full
    assert 0.3 * full < counts[(11.25, 0.5)] < 0.7 * full


def test_connect_waits_for_a_connectable_advert_and_times_out_on_a_silent_device():
    home, _ear = _home(Radio(seed=1, loss=0.0), "hall")
    dev = home.devs["b0"].dev
    home.world.run_for(700)  # booted, BLE coming up: not advertising yet
    got = []
    home.medium.connect(dev, got.append, 2000)
    home.world.run_for(400)
    assert got == [True] and dev.radio.connected and not dev.radio.advertising
    home.medium.disconnect(dev)
    home.world.run_for(60_000)  # heartbeat acknowledged by nobody... device goes quiet
    home.power_off("b0")
    got.clear()
    home.medium.connect(dev, got.append, 2000)
    home.world.run_for(2100)
    assert got == [False]


def test_histogram_png_is_a_valid_png(tmp_path):
    from hil.png import histogram_png

    histogram_png(tmp_path / "l.png", {"a": [800.0, 850.0, 990.0], "b": []}, 1000)
    data = (tmp_path / "l.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    n = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41:41 + n])
    assert len(raw) == h * (1 + 3 * w)


def test_report_has_the_table_and_the_budget(tmp_path):
    import json

    from hil.report import write_report

    res = [{"name": "one", "outcome": "passed", "duration_s": 1.0,
            "metrics": {"clock": "virtual", "latencies_ms": [810.0, 900.0], "expected": 2,
                        "delivered": 2, "lost": 0, "duplicates": 0, "notes": []}},
           {"name": "two", "outcome": "skipped", "reason": "no rig", "metrics": None}]
    d = write_report(tmp_path / "run", backend="sim", rig="sim", results=res, started=0.0)
    md = (d / "report.md").read_text()
    assert "| one | virtual | passed | 2 | 2 | 0 | 0 | 2 | 900 |" in md and "no rig" in md
    assert "budget 1000 ms" in md
    assert json.loads((d / "results.json").read_text())["latency"]["virtual"]["p99"] == 900.0
    assert (d / "latency.png").stat().st_size > 1000


def test_real_backend_refuses_to_run_without_its_rig(tmp_path):
    from hil.real.rig import RealRig, RigUnavailable

    with pytest.raises(RigUnavailable, match="no rig config"):
        RealRig.from_config(tmp_path / "missing.toml")
    cfg = tmp_path / "rig.toml"
    cfg.write_text('[dut]\nkind = "button"\nserial = "/dev/ttyNOPE"\ndevice_id = "0000b001"\n'
                   'key = "00112233445566778899aabbccddeeff"\n')
    with pytest.raises(RigUnavailable, match="serial|USB"):
        RealRig.from_config(cfg)


def test_the_real_rig_console_reader_on_a_pty():
    """hil/real/console.py is pyserial reading a tty: a pty stands in for the DUT's USB port
    (the one piece of the real backend that runs without the rig)."""
    import os
    import pty
    import time

    from hil.real.console import Console

    master, slave = pty.openpty()
    con = Console(os.ttyname(slave)).start()
    try:
        deadline = time.monotonic() + 5
        while not con.reopens and time.monotonic() < deadline:  # opening flushes the input
            time.sleep(0.02)
        t0 = time.monotonic()
        os.write(master, b"carebeacon: rig boot 2\r\ncarebeacon: pattern 5\r\n")
        _t, m = con.wait_for(r"carebeacon: pattern (\d+)", t0, 5)
        assert m.group(1) == "5" and con.since(t0, "rig boot")
        deadline = time.monotonic() + 5
        while not con.write_line("I 1000,0,0") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.read(master, 64).startswith(b"I 1000,0,0")
    finally:
        con.close()
        os.close(master)
        os.close(slave)
