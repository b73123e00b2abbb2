"""Energy budget per board: datasheet currents x the firmware's awake time, measured in the sim.

    .venv/bin/python bench/energy_budget.py [--latency-ms 800] [--days 1]

For every board in boards/ the real firmware runs on the simulated hardware layer
(firmware/hal/sim.py, simworld.py) against the hub double, through a typical day:

  button    hourly heartbeats; one SOS a month (help acknowledged after 2 min) and the
            weekly test, spread over the day they cost
  pir       hourly heartbeats, 15-min summaries, ~180 motions between 07:00 and 22:00
  bracelet  worn all day (a wrist gesture every 3 s), hourly heartbeats, 15-min summaries

The sim accounts time per mode (boot, awake with BLE up, light sleep, deep sleep,
advertising fast / slow, connected, LED, buzzer) plus app steps and BLE bring-ups; the
board file's "energy" block gives the current of each mode at the 3.3 V rail with its
sources. Battery current = rail current x 3.3 V / (battery voltage x converter efficiency)
+ converter quiescent current; life = usable capacity / (battery current + self-discharge).

What this cannot know: the board's real sleep current (regulator, pads, pull-ups), the
hub's real connect latency (--latency-ms), radio conditions. Currents marked MEASURE in
the board files are estimates; hil/ should replace them with measurements.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware import (  # noqa: E402 (after the sys.path line above)
    board as boards,
    config as configs,
)
from firmware.apps.bracelet import BraceletApp  # noqa: E402
from firmware.apps.button import ButtonApp  # noqa: E402
from firmware.apps.pir import PirApp  # noqa: E402
from firmware.hal import IN_BUTTON, IN_PIR  # noqa: E402
from firmware.hal.sim import SimPlatform  # noqa: E402
from firmware.hal.simhub import LoopbackHub  # noqa: E402
from firmware.hal.simworld import World  # noqa: E402

SEC, MIN, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000
RAIL_V = 3.3
APPS = {"button": ButtonApp, "pir": PirApp, "bracelet": BraceletApp}
# name: (capacity mAh usable at these loads, average voltage under load, self-discharge %/yr)
# Energizer E91/E92/L91/E95 datasheets (to 0.9 V/cell, ~25 mA); LiPo: 90 % of nominal.
BATTERIES = {
    "2xAA alkaline": (2500, 2.5, 3.0),
    "2xAAA alkaline": (1100, 2.5, 3.0),
    "2xAA lithium (L91)": (3000, 3.0, 1.0),
    "2xD alkaline": (15000, 2.5, 3.0),
    "200 mAh LiPo (built in)": (180, 3.7, 20.0),
}
GOALS = {"button": ("2xAA alkaline", 2 * 365 * 24), "pir": ("2xAA alkaline", 365 * 24),
         "bracelet": ("200 mAh LiPo (built in)", 5 * 24)}


def _noise(t, amp):
    x = (t * 1103515245 + 12345) & 0x7FFFFFFF
    return (x >> 8) % (2 * amp + 1) - amp


def wrist(t):
    g = 150 if (t // 500) % 6 == 0 else 0
    return (_noise(t, 8) + g, _noise(t + 7, 8), 1000 + _noise(t + 13, 8) - g // 2)


def simulate(board, kind, latency_ms, days, boot_ms=None, events=True):
    """Run the firmware for `days`; returns the platform (energy, counts) and the duration.

    events=False: no presses and no motion (heartbeats and summaries only).
    """
    if boot_ms is not None:
        board.boot_ms = boot_ms
    cfg = configs.parse({"device_id": 77, "key": "00" * 16, "kind": kind, "board": board.name},
                        "bench", kind)
    hub = LoopbackHub(latency_ms=latency_ms)
    hub.help_ms = 2 * MIN
    hub.register(cfg)
    world = World(hub)
    plat = SimPlatform(board, cfg, APPS[kind], kind)
    plat.battery_mv = 3000 if board.chemistry == "alkaline" else 3900
    if kind == "bracelet":
        plat.imu_fn = wrist
    world.add(plat)
    span = days * DAY if kind != "bracelet" else 2 * HOUR  # the bracelet's day is 12 of these
    plat.hub = hub  # per_event() counts the messages it heard
    if kind == "pir" and events:
        k = 0
        for d in range(days):
            t = d * DAY + 7 * HOUR
            while t < d * DAY + 22 * HOUR:
                plat.inputs[IN_PIR].pulse(t, 2000)
                k += 1
                t += 3 * MIN + (_noise(k, 120) + 120) * SEC  # 3-7 min apart: ~180 a day
    if kind == "button" and events:
        plat.inputs[IN_BUTTON].pulse(3 * HOUR, 200)  # an SOS...
        for j in range(3):  # ...and a weekly test: weighted below
            plat.inputs[IN_BUTTON].pulse(9 * HOUR + j * 900, 150)
    world.run_until(span)
    return plat, span


def charge_mas(plat, board):
    """Charge drawn from the 3.3 V rail in mA*s, and its parts."""
    e = plat.energy
    en = board.energy
    c = plat.counts
    parts = {
        "deep sleep": e["deep"] * en["deep_sleep_ua"] / 1e6,
        "light sleep": e["light"] * en["light_sleep_ua"] / 1e6,
        "awake (boot + BLE up)": (e["boot"] + e["awake"]) * en["awake_ma"] / 1e3,
        "BLE bring-up": c["radio_on"] * en.get("ble_on_ms", 200) * en["awake_ma"] / 1e3,
        "app steps": c["steps"] * en.get("step_ms", 2) * en["awake_ma"] / 1e3,
        "advertising": (e["adv_fast"] * en["radio_ma"] + e["adv"] * en.get("radio_slow_ma", 2))
        / 1e3,
        "connected": e["conn"] * en.get("conn_ma", 5) / 1e3,
        "LED / buzzer": (e["led"] * en.get("led_ma", 0) + e["tone"] * en.get("tone_ma", 0)
                         + e["vib"] * en.get("vib_ma", 0)) / 1e3,
    }
    total_ms = sum(e[k] for k in ("boot", "awake", "light", "deep"))
    parts["sensor"] = total_ms * en.get("sensor_ua", 0) / 1e6
    return parts


def battery_hours(rail_ma, board, battery):
    cap, volts, sd_pct = BATTERIES[battery]
    reg = board.energy.get("regulator", {})
    eff = reg.get("efficiency_pct", 100) / 100
    if reg.get("kind") == "boost":
        i_bat = rail_ma * RAIL_V / (volts * eff) + reg.get("quiescent_ua", 0) / 1000
    else:  # LDO: the same current flows from the battery
        i_bat = rail_ma + reg.get("quiescent_ua", 0) / 1000
    sd_ma = cap * sd_pct / 100 / (365 * 24)
    return cap / (i_bat + sd_ma), i_bat


def fmt_h(h):
    if h >= 24 * 365:
        return "%.1f years" % (h / 24 / 365)
    if h >= 48:
        return "%.1f days" % (h / 24)
    return "%.0f h" % h


def _awake(e):
    return e["boot"] + e["awake"]


def _radio(e):
    return e["adv"] + e["adv_fast"] + e["conn"]


def per_event(board, kind, latency_ms):
    """Awake and radio ms per routine message, and per event (SOS episode, motion)."""
    quiet, span = simulate(boards.load(board.path), kind, latency_ms, 1, events=False)
    msgs = len({f.seq for t, n, f in quiet.hub.frames})
    e = quiet.energy
    out = [("awake ms per routine message", _awake(e) / msgs),
           ("radio ms per routine message", _radio(e) / msgs),
           ("routine messages a day", msgs * DAY // span)]
    if kind in ("button", "pir"):
        busy, _ = simulate(boards.load(board.path), kind, latency_ms, 1, events=True)
        d = {k: busy.energy[k] - e[k] for k in e}
        if kind == "button":
            out.append(("awake ms per SOS + test", _awake(d)))
            out.append(("radio ms per SOS + test", _radio(d)))
        else:
            n = len([c for c in busy.inputs[IN_PIR].changes if c[1]])
            out.append(("motions a day (assumed)", n))
            out.append(("awake ms per motion", _awake(d) / n))
    return out


def report(path, latency_ms, days):
    board = boards.load(str(path))
    kind = board.kinds[0]
    plat, span = simulate(board, kind, latency_ms, days)
    parts = charge_mas(plat, board)
    if kind == "button":  # one SOS a month and a test a week, not one each a day
        base, _ = simulate(boards.load(str(path)), kind, latency_ms, days, events=False)
        bparts = charge_mas(base, board)
        extra = sum(parts.values()) - sum(bparts.values())
        parts = dict(bparts)
        parts["SOS monthly + test weekly"] = extra * (1 / 30 + 1 / 7) / 2 * days
    total = sum(parts.values())
    rail_ma = total / (span / 1000)
    print("\n== %s (%s, %s)" % (board.name, kind, board.chip))
    for k, v in per_event(board, kind, latency_ms):
        print("   %-30s %8.0f" % (k, v))
    e = plat.energy
    if span < DAY:
        print("   (%d h simulated, scaled to a day)" % (span // HOUR))
    scale = DAY / span
    print("   per day: awake %.0f s, radio %.0f s, boots %d, steps %d" % (
        _awake(e) / 1000 * scale, _radio(e) / 1000 * scale,
        plat.counts["boots"] * scale, plat.counts["steps"] * scale))
    print("   average rail current %.3f mA:" % rail_ma)
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print("     %-26s %6.1f %%" % (k, 100 * v / total if total else 0))
    if board.power == "usb":
        print("   mains powered: %.1f mWh a day at the 3.3 V rail" % (rail_ma * RAIL_V * 24))
        return True
    ok = True
    for bat in board.energy.get("batteries", []):
        h, i_bat = battery_hours(rail_ma, board, bat)
        goal = GOALS.get(kind)
        mark = ""
        if goal and goal[0] == bat:
            mark = "  goal %s: %s" % (fmt_h(goal[1]), "MET" if h >= goal[1] else "NOT MET")
            ok = ok and h >= goal[1]
        print("   %-24s %.3f mA -> %s%s" % (bat, i_bat, fmt_h(h), mark))
    if kind != "bracelet" and board.boot_ms > 100:
        fb = boards.load(str(path))
        fplat, fspan = simulate(fb, kind, latency_ms, days, boot_ms=70,
                                events=kind != "button")
        fparts = charge_mas(fplat, fb)
        if kind == "button":
            fparts["SOS monthly + test weekly"] = parts["SOS monthly + test weekly"]
        frail = sum(fparts.values()) / (fspan / 1000)
        bat = GOALS[kind][0]
        h, _ = battery_hours(frail, fb, bat)
        print("   with the firmware frozen into the image (boot 70 ms): %.3f mA, %s on %s"
              % (frail, fmt_h(h), bat))
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-ms", type=int, default=800,
                    help="hub: first advert heard -> acknowledgement written (default 800)")
    ap.add_argument("--days", type=int, default=1)
    args = ap.parse_args(argv)
    print("carebeacon energy budget: hub latency %d ms; currents from boards/*.json"
          " (see their sources)" % args.latency_ms)
    ok = True
    for path in sorted((ROOT / "boards").glob("*.json")):
        ok = report(path, args.latency_ms, args.days) and ok
    print("\nall battery goals met" if ok else "\nSOME BATTERY GOALS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
