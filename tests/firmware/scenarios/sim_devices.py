# The firmware apps, core and persistence run under the simulator on MicroPython and on
# CPython; every line printed must be identical (tests/firmware/test_sim_micropython.py).
# Scenario: a button (heartbeat, SOS until help, cancel, weekly test, deep sleep between)
# and a PIR (warm-up, motion, summary) on one hub double, across the tick wrap.
import sys

from firmware import board as boards, config as configs
from firmware.apps.button import ButtonApp
from firmware.apps.pir import PirApp
from firmware.hal import IN_BUTTON, IN_PIR
from firmware.hal.sim import SimPlatform
from firmware.hal.simhub import LoopbackHub, seqs_unique
from firmware.hal.simworld import World

ROOT = "/repo" if sys.implementation.name == "micropython" else sys.argv[1]
KEY = "00112233445566778899aabbccddeeff"


def device(kind, board, app, did):
    b = boards.load(ROOT + "/boards/" + board + ".json")
    cfg = configs.parse({"device_id": did, "key": KEY, "kind": kind, "board": board}, "c", kind)
    hub.register(cfg)
    return SimPlatform(b, cfg, app, kind)


hub = LoopbackHub()
hub.help_ms = 40000
world = World(hub)
btn = device("button", "esp32c3-supermini-button", ButtonApp, 11)
pir = device("pir", "esp32c3-supermini-pir-am312", PirApp, 12)
world.add(btn)
world.add(pir)
b = btn.inputs[IN_BUTTON]
b.pulse(20000, 150)  # SOS
b.pulse(130000, 3500)  # cancel (after help): hold 3.5 s
b.pulse(1200000, 150)  # weekly test, 20 min later: three presses about a second apart
b.pulse(1201000, 150)
b.pulse(1202000, 150)
for t in (90000, 200000, 400000):
    pir.inputs[IN_PIR].pulse(t, 2000)
world.run_until(1500000)
for t, name, f in hub.frames:
    print(t, name, f.seq, f.mtype, f.attempt, f.age_ms, f.arg)
for t, name, seq, st in hub.acks_sent:
    print("ack", t, name, seq, st)
for p in (btn, pir):
    print(p.name, "boots", p.counts["boots"], "steps", p.counts["steps"], "nvs", p.nvs_writes)
    print(p.name, "energy", " ".join("%s=%d" % (k, p.energy[k]) for k in sorted(p.energy)))
    print(p.name, "patterns", " ".join(str(v) for t, w, v in p.traces if w == "pattern"))
print("unique", seqs_unique(hub.frames) == "")
