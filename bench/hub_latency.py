"""How fast, how big and how idle is the hub?

    .venv/bin/python bench/hub_latency.py [--frames 300] [--burst 1000] [--idle-s 20]
                                          [--devices 3] [--dir DIR]

Prints, from one run against one local mosquitto (mutual TLS, the test broker of
hil/sim/broker.py):
  frame -> PUBACK     HubCore + Store (synchronous=FULL) + the real Uplink: from the
                      HubCore.on_frame call to HubCore.on_delivered, frames fed directly
                      (no BLE), one at a time; p50 / p99
  bare round trip     a plain paho QoS 1 publish of an event-sized payload -> PUBACK
  one FULL commit     Store.add of one record (the fsync every alarm pays before STORED)
  ratio and goal      hub p50 <= 1.5 x bare p50 + one commit
                      (the three are sampled in alternating rounds of --round frames, so
                      a shared machine's load falls on all three alike)
  burst               N alarms fed at once -> all delivered: events/s
  memory, idle CPU    a real `python -m hub run` with the BlueZ double and a few devices
                      (each sent one SOS first): VmRSS from /proc/<pid>/status (goal <= 40 MB)
                      and utime+stime over --idle-s (goal <= 1 % of a core)
Figures only: this is not a test (tests/hub/test_bench_smoke.py checks it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "tests" / "hub"):  # the e2e helpers: the air, the home around the hub
    sys.path.insert(0, str(_p))

import paho.mqtt.client as mqtt  # noqa: E402
from e2e_home import Home, device_spec  # noqa: E402

from hil.sim.broker import Broker  # noqa: E402
from hil.sim.hubconf import DeviceSpec, write_hub_config  # noqa: E402
from hil.sim.platform import Platform  # noqa: E402
from hub.config import load  # noqa: E402
from hub.daemon import uplink_config  # noqa: E402
from hub.pipeline import HubCore  # noqa: E402
from hub.store import Record, Store  # noqa: E402
from hub.uplink import Uplink  # noqa: E402
from shared import frame as F  # noqa: E402

HUB, COUNTY = "hub-a", "bench-county"
RSS_GOAL_MB, CPU_GOAL_PCT = 40.0, 1.0


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def figures(xs: list[float]) -> str:
    return "p50 %7.3f ms  p99 %7.3f ms" % (pct(xs, 50) * 1e3, pct(xs, 99) * 1e3)


def hub_config(d: Path, broker: Broker, keys: dict[int, bytes]):
    """The hub's config for the in-process figures: inactivity off (no timers of its own)."""
    path = write_hub_config(d, HUB, COUNTY, [DeviceSpec(k, v) for k, v in keys.items()],
                            url=f"mqtts://{broker.host}:{broker.port}", tls=broker.tls(HUB),
                            household="hh-bench", inactivity={"enabled": False})
    cfg = load(path)
    cfg.data_dir.mkdir(exist_ok=True)
    return cfg


class BareClient:
    """A plain paho QoS 1 client publishing to a hub's event topic (another hub id)."""

    def __init__(self, broker: Broker) -> None:
        f = broker.tls("hub-b")
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="hub-b", protocol=mqtt.MQTTv5
        )
        self.c.tls_set(ca_certs=f.ca, certfile=f.cert, keyfile=f.key)
        self.acked = threading.Event()
        self.c.on_publish = lambda *a: self.acked.set()
        self.c.connect(broker.host, broker.port, 30)
        self.c.loop_start()

    def sample(self, n: int, payload: bytes) -> list[float]:
        """n publish -> PUBACK round trips, in s."""
        out = []
        for _ in range(n):
            self.acked.clear()
            t = time.perf_counter()
            self.c.publish(f"carebeacon/v1/{COUNTY}/hub-b/event", payload, qos=1)
            if not self.acked.wait(5):
                raise RuntimeError("no PUBACK within 5 s")
            out.append(time.perf_counter() - t)
        return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class Commits:
    """Store.add of one event-sized record: the FULL commit every alarm pays before STORED."""

    def __init__(self, d: Path) -> None:
        self.store = Store(d / "commit.db", hub_id="bench")  # FULL
        self.seq = 0

    def sample(self, n: int) -> list[float]:
        out = []
        for _ in range(n):
            self.seq += 1
            rec = Record(
                device_id=1,
                seq=self.seq,
                mtype=F.T_SOS,
                arg=0,
                event_ms=1,
                recv_ms=1,
                payload_json='{"pad":"%s"}' % ("x" * 400),
            )
            t = time.perf_counter()
            self.store.add(rec)
            out.append(time.perf_counter() - t)
        return out

    def close(self) -> None:
        self.store.close()


async def core_figures(
    cfg,
    keys: dict[int, bytes],
    frames: int,
    burst: int,
    rnd: int,
    bare: BareClient,
    commits: Commits,
):
    """Latencies in s of single frames through HubCore + Store + Uplink (and of on_frame
    alone), of bare round trips and of commits, sampled in alternating rounds; burst s."""
    loop = asyncio.get_running_loop()
    sent: dict[str, float] = {}
    returned: dict[str, float] = {}  # when on_frame returned (verified, stored, published)
    done: dict[str, float] = {}
    wake = asyncio.Event()
    core: HubCore | None = None

    waiter: dict[str, asyncio.Future] = {}

    def delivered(ref: str) -> None:
        done.setdefault(ref, time.perf_counter())
        core.on_delivered(ref)
        fut = waiter.pop(ref, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
        wake.set()

    up = Uplink(
        uplink_config(cfg),
        loop=loop,
        on_delivered=delivered,
        on_rejected=lambda ref, rej: core.on_rejected(ref, rej),
        on_connected=lambda *a: core.on_connected(*a),
        on_disconnected=lambda *a: core.on_disconnected(*a),
        on_request=lambda req: core.on_request(req),
    )
    store = Store(cfg.data_dir / "hub.db", hub_id=cfg.hub_id)  # sync FULL: the default
    core = HubCore(cfg, store, publisher=up, acker=lambda *a: None, defer=loop.call_soon)
    codecs = {d: F.Codec(d, k) for d, k in keys.items()}
    seqs = dict.fromkeys(keys, 0)

    def feed(dev: int, fut: asyncio.Future | None = None) -> str:
        seqs[dev] += 1
        data = bytes(codecs[dev].encode(bytearray(F.FRAME_LEN), seqs[dev], F.T_SOS))
        ref = store.ref_for(dev, seqs[dev])
        if fut is not None:
            waiter[ref] = fut
        sent[ref] = time.perf_counter()
        core.on_frame(f"C8:2E:00:00:{dev >> 8 & 0xFF:02X}:{dev & 0xFF:02X}", data, -60)
        returned[ref] = time.perf_counter()
        return ref

    async def until(refs: list[str], timeout: float = 120.0) -> None:
        async with asyncio.timeout(timeout):
            while not all(r in done for r in refs):
                wake.clear()
                await wake.wait()

    up.start()
    try:
        async with asyncio.timeout(15):
            while not up.connected:
                await asyncio.sleep(0.01)
        devs = list(keys)
        warm = [feed(d) for d in devs]  # warm-up: first contact, availability
        await until(warm)
        payload = store.get(warm[0]).payload_json.encode()  # what the bare client sends
        bare.sample(5, payload)
        commits.sample(5)
        lat, inside, rtt, com = [], [], [], []
        async with asyncio.timeout(120 + frames):
            for i in range(frames):
                # The waiter is ready before the frame: after on_frame the loop goes idle at
                # once, as in the daemon, so paho's thread gets the GIL to send the PUBLISH.
                fut = loop.create_future()
                ref = feed(devs[i % len(devs)], fut)
                await fut
                lat.append(done[ref] - sent[ref])
                inside.append(returned[ref] - sent[ref])
                if len(lat) % rnd == 0 or len(lat) == frames:  # nothing in flight now
                    rtt += bare.sample(len(lat) - len(rtt), payload)
                    com += commits.sample(len(lat) - len(com))
        t0 = time.perf_counter()
        refs = [feed(devs[i % len(devs)]) for i in range(burst)]
        await until(refs)
        return lat, inside, rtt, com, time.perf_counter() - t0
    finally:
        await loop.run_in_executor(None, up.close)
        store.close()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_mb(pid: int) -> tuple[float, float]:
    kv = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(kv["VmRSS"].split()[0]) / 1024, int(kv["VmHWM"].split()[0]) / 1024


def process_figures(broker: Broker, d: Path, devices: int, idle_s: float) -> None:
    specs = [device_spec(0xB000 + i) for i in range(devices)]
    home = Home(broker, d, specs)
    try:
        for dev in home.dev.values():  # every path once: radio, store, uplink, ack writes
            dev.wait_status(dev.send(F.T_SOS, target=F.ACK_DELIVERED), F.ACK_DELIVERED, 30)
        time.sleep(min(2.0, idle_s))  # let the acks and the first status writes settle
        pid = home.hub.pid
        c0, t0 = cpu_s(pid), time.monotonic()
        time.sleep(idle_s)
        used = (cpu_s(pid) - c0) / (time.monotonic() - t0) * 100
        rss, peak = rss_mb(pid)
        print(
            "hub process (python -m hub run, BlueZ double, %d devices): RSS %.1f MB "
            "(peak %.1f MB); goal <= %.0f MB: %s"
            % (devices, rss, peak, RSS_GOAL_MB, "met" if rss <= RSS_GOAL_MB else "NOT met")
        )
        print(
            "idle CPU over %.0f s: %.2f %% of a core; goal <= %.0f %%: %s"
            % (idle_s, used, CPU_GOAL_PCT, "met" if used <= CPU_GOAL_PCT else "NOT met")
        )
    finally:  # not Home.close(): that prints the hub's log
        home.hub.stop()
        home.platform.close()
        home.air.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300, help="single-frame latency samples")
    ap.add_argument("--burst", type=int, default=1000, help="alarms fed at once")
    ap.add_argument("--idle-s", type=float, default=20.0, help="idle CPU window (s)")
    ap.add_argument("--devices", type=int, default=3, help="devices of the hub process")
    ap.add_argument(
        "--round",
        type=int,
        default=30,
        help="frames per round; each round is followed by as many bare round trips and commits",
    )
    ap.add_argument("--dir", help="directory for the databases (default: a temporary one)")
    args = ap.parse_args(argv)
    if min(args.frames, args.burst, args.devices, args.round) < 1 or args.idle_s <= 0:
        ap.error("counts must be >= 1 and --idle-s > 0")
    keys = {0xA000 + i: os.urandom(16) for i in range(4)}
    with (
        tempfile.TemporaryDirectory(dir=args.dir, prefix="carebeacon-bench-") as tmp,
        Broker(county=COUNTY, hubs=[HUB, "hub-b"]) as broker,
    ):
        d = Path(tmp)
        consumer = Platform(broker.host, broker.port, county=COUNTY, tls=broker.tls("platform"),
                            topics=("+/event",)).wait_connected()
        bare_client, committer = BareClient(broker), Commits(d)
        try:
            cfg = hub_config(d, broker, keys)
            lat, inside, bare, commits, burst_s = asyncio.run(
                core_figures(cfg, keys, args.frames, args.burst, args.round, bare_client, committer)
            )
        finally:
            bare_client.close()
            committer.close()
            consumer.close()
        print(
            "hub benchmark, %s, mosquitto with mutual TLS on %s"
            % (time.strftime("%Y-%m-%d %H:%M"), broker.host)
        )
        print(
            "frame -> PUBACK (HubCore + Store FULL + Uplink), %4d frames: %s"
            % (len(lat), figures(lat))
        )
        print("  of which inside on_frame (verify, commit, publish)         %s" % figures(inside))
        print(
            "bare paho QoS 1 publish -> PUBACK,            %4d:        %s"
            % (len(bare), figures(bare))
        )
        print(
            "one SQLite FULL commit (Store.add),           %4d:        %s"
            % (len(commits), figures(commits))
        )
        goal = 1.5 * pct(bare, 50) + pct(commits, 50)
        print(
            "ratio hub p50 / bare p50: %.1fx; goal hub p50 <= 1.5 x bare + 1 commit = "
            "%.3f ms: %s"
            % (
                pct(lat, 50) / pct(bare, 50),
                goal * 1e3,
                "met" if pct(lat, 50) <= goal else "NOT met",
            )
        )
        print(
            "burst: %d alarms fed at once -> all delivered in %.2f s: %.0f events/s"
            % (args.burst, burst_s, args.burst / burst_s)
        )
        process_figures(broker, d / "process", args.devices, args.idle_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
