"""The hub process: one asyncio loop joining the radio, the core, the store and the uplink.

    radio (bleak) --advert--> HubCore.on_frame --> Store (fsync) --> ack over BLE
                                              \\-> Uplink (on this loop) --PUBACK--> on_delivered

The uplink's paho client is driven by this loop (hub/uplink_loop.py) and every
uplink callback runs on it, so the core and the store are only ever used from
this one thread.
Acknowledgement writes run as tasks (a BLE connect takes about a second) and
report back to the core. A status snapshot is written to
`<data_dir>/status.json` every few seconds for `carebeacon-hub status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
import traceback
from pathlib import Path

from hub import atomic_file, contract, identity_watch as identity
from hub.config import Config, ConfigError
from hub.coverage import day_of
from hub.identity_watch import IdentityWatch
from hub.pipeline import HubCore
from hub.pipeline_acks import ack_value
from hub.store import Store
from hub.uplink import Uplink, UplinkConfig

log = logging.getLogger("carebeacon.daemon")

TICK_S = 1.0
STATUS_EVERY_S = 2.0
PRUNE_EVERY_S = 3600.0
VERSION = "0.1.0"
# what a blocked uplink (Platform.blocked) waits for: hub.toml is read at start only
BLOCKED_UNTIL = "nothing is sent to the platform until hub.toml is fixed and the hub restarted"


def uplink_config(cfg: Config) -> UplinkConfig:
    p = cfg.platform
    return UplinkConfig(
        hub_id=cfg.hub_id,
        county=cfg.county,
        host=p.host,
        port=p.port,
        unix_socket=p.unix_socket,
        ca_file=p.ca_file if p.tls else None,
        cert_file=p.cert_file if p.tls else None,
        key_file=p.key_file if p.tls else None,
        keepalive=p.keepalive_s,
        session_expiry=p.session_expiry_s,
        software=f"carebeacon-hub {VERSION}",
    )


class Daemon:
    def __init__(self, cfg: Config, *, radio_factory=None, store: Store | None = None):
        self.cfg = cfg
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # e.g. moved outside the unit's ReadWritePaths
            raise ConfigError(f"{cfg.path}: hub.data_dir: {cfg.data_dir} cannot be created "
                              f"({e.strerror or e}): give a folder the hub's user may write "
                              "(docs/install-hub.md)") from None
        self.store = store or Store(
            cfg.data_dir / "hub.db", hub_id=cfg.hub_id, on_fault=self._store_fault
        )
        self._radio_factory = radio_factory
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        self.core: HubCore | None = None
        self.uplink: Uplink | None = None
        self.radio = None
        self.started_mono = time.monotonic()
        self.errors: dict[str, int] = {}  # periodic task errors (_guarded): kind and place -> count
        self._identity: IdentityWatch | None = None  # fault 211 (_watch_identity)
        # _guarded raises instead of reporting when CAREBEACON_RAISE_TASK_ERRORS=1: the test
        # suites set it (tests/conftest.py, hil/conftest.py; hub processes they start inherit
        # it) so that a test sees a bug; a test of the guard itself sets this to True.
        self.keep_running_on_errors = os.environ.get("CAREBEACON_RAISE_TASK_ERRORS") != "1"

    # -- wiring ---------------------------------------------------------------------------
    def _store_fault(self, text: str | None) -> None:
        # called inside a store write: act after it returns, never re-enter the store
        loop = asyncio.get_running_loop()
        if text:
            loop.call_soon(lambda: self.core and self.core.hub_fault(202, text))
        else:
            loop.call_soon(lambda: self.core and self.core.hub_fault_cleared(202))

    def _acker(
        self, dev_id: int, address: str, data: bytes, setting: int, own: bool = False
    ) -> None:
        async def write() -> None:
            ok = False
            try:
                ok = bool(await self.radio.send_ack(address, data, own=own))
            except Exception as e:  # a bug in the radio: the device's next retry gets an ack
                self._task_error("an acknowledgement write", e)
            finally:
                self.core.ack_written(dev_id, setting, ok, address, ack_value(data))

        self._spawn(write())

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _make_radio(self):
        if self._radio_factory is not None:
            return self._radio_factory(on_advert=self.core.on_frame, on_health=self._health)
        from hub.radio import Radio

        r = self.cfg.radio
        return Radio(
            adapter=r.adapter,
            scanning=r.scanning,
            silence_restart_s=r.silence_restart_s,
            silence_reset_s=r.silence_reset_s,
            connect_timeout_s=r.ack_connect_timeout_s,
            on_advert=self.core.on_frame,
            on_health=self._health,
        )

    def _health(self, h) -> None:
        self.core.set_radio_health(h.state, h.detail or "")

    # -- running --------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        blocked = self.cfg.platform.blocked  # hub.toml forbids this connection: none is made
        self.uplink = Uplink(
            uplink_config(self.cfg),
            loop=loop,
            blocked=blocked and f"{blocked}; {BLOCKED_UNTIL}",
            on_delivered=lambda ref: self.core.on_delivered(ref),
            on_rejected=lambda ref, rej: self.core.on_rejected(ref, rej),
            on_connected=lambda *a: self.core.on_connected(*a),
            on_disconnected=lambda *a: self.core.on_disconnected(*a),
            on_request=lambda req: self.core.on_request(req),
        )
        # defer: delivery marks committed once per batch of PUBACKs, not one fsync each
        self.core = HubCore(
            self.cfg, self.store, publisher=self.uplink, acker=self._acker, defer=loop.call_soon
        )
        self.radio = self._make_radio()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stopping.set)
        log.info(
            "hub %s (county %s, household %s): %d devices, data in %s",
            self.cfg.hub_id,
            self.cfg.county,
            self.cfg.household,
            len(self.cfg.devices),
            self.cfg.data_dir,
        )
        self.uplink.start()
        await self.radio.start()
        last_status = last_prune = 0.0
        try:
            while not self._stopping.is_set():
                self._guarded("the periodic tick", self.core.tick)
                self._guarded("the identity check", self._watch_identity)
                now = time.monotonic()
                if now - last_status >= STATUS_EVERY_S:
                    self._guarded("the status snapshot", self.write_status)
                    last_status = now
                if now - last_prune >= PRUNE_EVERY_S:
                    self._guarded("pruning", lambda: self.store.prune(self.core.clock.wall_ms()))
                    last_prune = now
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), TICK_S)
        finally:
            await self.shutdown()

    def _watch_identity(self) -> None:
        """Fault 211 while another client uses this hub's identity (hub/identity_watch.py): the
        county must know (a cloned SD card or a copied key can publish as this hub; alarms are
        delayed while the two knock each other off). Sent when the hub holds the connection."""
        core, up = self.core, self.uplink
        if self._identity is None:  # raised before a restart: still in force, not sent again
            blob = self.store.get_state(identity.STATE)
            self._identity = IdentityWatch(identity.stored_flag(blob))
            if self._identity.raised:
                core.faults[identity.IDENTITY_IN_USE] = identity.TEXT
            elif self._identity.raised is None:  # a clear sends a restoral, a raise a fault
                log.error("fault 211's stored state is unreadable (%r): watching afresh", blob)
                core.faults[identity.IDENTITY_IN_USE] = identity.UNKNOWN_TEXT
        change = self._identity.step(time.monotonic(), bool(up and up.identity_in_use),
                                     bool(up and up.connected))
        if change > 0:  # the state is committed with the event: a crash cannot split them
            core.hub_fault(identity.IDENTITY_IN_USE, identity.TEXT,
                           states={identity.STATE: b"1"})
            self.store.put_state(identity.STATE, b"1")  # (no event if already in force)
        elif change < 0:
            core.hub_fault_cleared(identity.IDENTITY_IN_USE, states={identity.STATE: b"0"})
            self.store.put_state(identity.STATE, b"0")

    def _guarded(self, what: str, fn) -> None:
        """Run one periodic task; should it raise (a bug, e.g. an event that cannot be
        built), log it and report it as hub fault 208 (once per kind of error and place,
        counted after that) and keep the hub running: radio, store and uplink still serve
        the alarms. With `keep_running_on_errors` False (the test suites) it is raised."""
        try:
            fn()
        except Exception as e:
            self._task_error(what, e)

    def _task_error(self, what: str, e: Exception) -> None:
        """Report a bug in a task as `_guarded` describes (re-raised in the test suites)."""
        if not self.keep_running_on_errors:
            raise e
        where = traceback.extract_tb(e.__traceback__)[-1]
        key = f"{type(e).__name__} at {Path(where.filename).name}:{where.lineno}"
        n = self.errors[key] = self.errors.get(key, 0) + 1
        if n > 1:
            if n in (10, 100, 1000) or n % 10_000 == 0:
                log.error("%s failed again (%s), %d times so far", what, key, n)
            return
        log.error("%s failed (%s); the hub keeps running", what, key, exc_info=e)
        try:
            self.core.hub_fault(208, f"{what} failed: {key}: {e}"[:200])
        except Exception:
            log.exception("cannot report that as a hub fault either")

    def stop(self) -> None:
        self._stopping.set()

    async def shutdown(self) -> None:
        log.info("stopping")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.radio.stop(), 15)
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.core.home.save(self.core.clock.mono_ms())
        await asyncio.get_running_loop().run_in_executor(None, self.uplink.close)
        self.write_status(running=False)
        self.store.close()

    # -- status ---------------------------------------------------------------------------
    def status(self, running: bool = True) -> dict:
        core = self.core
        devices = []
        for d, dev in sorted(self.cfg.devices.items()):
            rt = core.devices[d]
            devices.append(
                {
                    "id": contract.device_hex(d),
                    "kind": dev.kind,
                    "room": dev.room,
                    "location": dev.location,
                    "availability": core.home.supervisor.state(d),
                    "last_seen": (
                        contract.iso_time(rt.last_wall_ms / 1000) if rt.last_wall_ms else None
                    ),
                    "battery": rt.battery,
                    "rssi": rt.rssi,
                    "refused_frames": rt.bad_tags,
                    "settings_pending": len(rt.settings),
                    # set by the platform, over hub.toml's (cleared by it with null)
                    "platform_settings": core.device_settings.named(d),
                }
            )
        # counted, not read: this runs every 2 s, also through a long outage's backlog
        n_pending, alarms = self.store.pending_summary()
        det = core.home.detector
        radio = getattr(self.radio, "health", None)
        return {
            "hub": self.cfg.hub_id,
            "county": self.cfg.county,
            "household": self.cfg.household,
            "running": running,
            "pid": os.getpid(),
            "time": contract.iso_time(time.time()),
            "uptime_s": int(time.monotonic() - self.started_mono),
            "uplink": {
                "connected": bool(self.uplink and self.uplink.connected),
                "protocol": getattr(self.uplink, "protocol", None),
                "in_flight": len(core.in_flight),
                # why not connected (TLS files, broker), or knocked off (another hub's identity)
                "problem": self.uplink.problem if self.uplink else None,
            },
            "radio": {
                "status": core.radio_health,
                "state": getattr(radio, "state", None),
                "detail": getattr(radio, "detail", None),
                "adverts": getattr(radio, "adverts", None),
            },
            "devices": devices,
            "pending": {"events": n_pending, "alarms": alarms},
            "store": {"fault": self.store.fault, "dropped": self.store.dropped},
            "faults": {contract.HUB_FAULTS.get(c, str(c)): t for c, t in core.faults.items()},
            "unknown_devices": [
                {
                    "id": contract.device_hex(d),
                    "count": u.count,
                    "rssi": u.rssi,
                    "address": u.address,
                }
                for d, u in sorted(core.unknown.items())  # the newest UNKNOWN_KEPT only
            ],
            "unknown_dropped": core.unknown.dropped,  # older unknown ids no longer listed
            "inactivity": None
            if det is None
            else {
                "state": ["idle", "prealarm", "alarm", "away"][det.state],
                "still_min": det.still_ms // 60_000,
                "threshold_min": det.threshold_ms // 60_000,
                "learned_days": det.learned_days,
                "platform_settings": dict(sorted(core.home.tuned.items())),
                # how long the sensors leave the resident unseen (hub/coverage.py)
                "coverage": core.home.coverage.figure(day_of(core.clock.wall_ms()))
                if core.home.coverage else None,
            },
            "counters": dict(core.counters),
        }

    def write_status(self, running: bool = True) -> None:
        path = Path(self.cfg.data_dir) / "status.json"
        try:
            # Not fsync'ed: rewritten every STATUS_EVERY_S from the event loop, where an fsync
            # would stall the radio and wear the SD card; after a crash the next one mends it.
            atomic_file.write(path, json.dumps(self.status(running), indent=1), fsync=False)
        except OSError as e:  # a full disk must not stop the hub
            log.warning("cannot write %s: %s", path, e)
