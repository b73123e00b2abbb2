"""The home as a whole: which devices still report, and whether the home has gone still.

Supervision (hub/supervision.py) decides when a device is offline, at the heartbeat
interval in force (hub/device_settings.py: hub.toml's, or the platform's); the shared
inactivity detector (shared/inactivity.py) decides when the home has been still
too long. This module feeds both from verified frames and turns their verdicts
into platform events, availability, and the pre-alarm that devices sound.

Inputs to the detector:
- motion: an ACTIVITY summary with motion in it, a MOTION report, a bracelet's
  movement; from a device marked `entrance` these count as the front door;
- door: a DOOR report;
- press: SOS, test, cancel, or a fall the wearer cancelled (all signs of life);
- away: a bracelet not heard for `bracelet_absent_min` while its wearer was at
  home (out of range: gone out).
The detector's state is saved to the store every few minutes, at each of its
events and at shutdown, so its learned history survives restarts; with it the
hub's side of an alarm in progress (`pack_state`): the ref of the inactivity alarm
(a sign of life after a restart still sends its `cancel`, which stops the alarm's
repeats) and the pre-alarm time left (a restart does not silence "are you all
right?"). Like the detector, that time does not run while the hub is off.

The platform may tune the detector of this home within contract.INACTIVITY_BOUNDS through a
settings request (`tune`): the running detector takes the new settings at once and keeps its
learned history; the values are stored and win over hub.toml's at the next start, until the
platform clears them (null). The floor must stay above every activity interval the platform
set (`floor_problem`, docs/inactivity.md).

Every input also measures how long the home's sensors leave the resident unseen
(hub/coverage.py): too long for any fast stillness alarm raises hub fault 210.
"""

from __future__ import annotations

import json
import logging

from hub import contract, events as E
from hub.coverage import SENSOR_COVERAGE, UNKNOWN_TEXT, Coverage, day_of, fault_text
from hub.prealarm_notice import PrealarmNotice
from hub.store_types import HUB_SELF
from hub.supervision import OFFLINE, OFFLINE_STATE, ONLINE, Supervisor
from shared import frame as F, inactivity as I

log = logging.getLogger("carebeacon.home")

_TICKS = 0x3FFFFFFF  # the detector runs on ESP32-style ticks (shared/ticks.py)
SAVE_EVERY_MS = 5 * 60_000
_MOTION_TYPES = (F.T_ACTIVITY, F.T_MOTION)
_PRESS_TYPES = (F.T_SOS, F.T_TEST, F.T_SOS_CANCEL, F.T_FALL_CANCELLED)
# The stored "inactivity" state: the detector's own blob (shared/inactivity.py to_bytes, its
# version first: 1), which is all a hub before this layout stored, or this wrapper around it:
# magic, version, u16 BE length, a JSON object {"alarm_ref": str|null, "prealarm_left_ms":
# int|null}, then the detector's blob. The magic cannot start a detector blob (its byte 0 is
# the detector's small version number).
_STATE_MAGIC = b"CBHW"
_STATE_VERSION = 1


def pack_state(detector: bytes, alarm_ref: str | None, prealarm_left_ms: int | None) -> bytes:
    head = json.dumps({"alarm_ref": alarm_ref, "prealarm_left_ms": prealarm_left_ms},
                      separators=(",", ":")).encode()
    return _STATE_MAGIC + bytes([_STATE_VERSION]) + len(head).to_bytes(2, "big") + head + detector


def unpack_state(blob: bytes) -> tuple[bytes, str | None, int | None]:
    """(detector blob, alarm ref, pre-alarm ms left) from a stored state; ValueError if
    unusable. A detector blob alone (stored by an older hub) has neither ref nor time left."""
    if not blob.startswith(_STATE_MAGIC):
        return blob, None, None
    n = len(_STATE_MAGIC)
    if len(blob) < n + 3 or blob[n] != _STATE_VERSION:
        raise ValueError("hub state layout %s, expected %d"
                         % (blob[n] if len(blob) > n else "cut short", _STATE_VERSION))
    size = int.from_bytes(blob[n + 1:n + 3], "big")
    head = json.loads(blob[n + 3:n + 3 + size])  # a JSONDecodeError is a ValueError
    if not isinstance(head, dict):
        raise ValueError("hub state: not a JSON object")
    ref, left = head.get("alarm_ref"), head.get("prealarm_left_ms")
    if not (ref is None or isinstance(ref, str)) or not (left is None or type(left) is int):
        raise ValueError("hub state: bad alarm_ref or prealarm_left_ms")
    return blob[n + 3 + size:], ref or None, left


def detector_kwargs(values: dict[str, int]) -> dict[str, int]:
    """hub.toml [inactivity] minutes -> shared.inactivity keyword arguments (ms)."""
    out = {}
    for k, v in values.items():
        if k.endswith("_min"):
            out[k[:-4] + "_ms"] = v * 60_000
        elif k in ("margin_pct", "rank"):
            out[k] = v
    return out


def stored_tuning(cfg, store) -> dict[str, int]:
    """The platform's inactivity values kept in the store, or {} if unusable."""
    blob = store.get_state("inactivity_settings")
    if not blob:
        return {}
    try:
        vals = json.loads(blob)
        ok = isinstance(vals, dict) and all(
            k in contract.INACTIVITY_BOUNDS and type(v) is int
            and contract.INACTIVITY_BOUNDS[k][0] <= v <= contract.INACTIVITY_BOUNDS[k][1]
            for k, v in vals.items())
        if ok and not contract.inactivity_conflict({**cfg.inactivity.values, **vals}):
            return vals
    except ValueError:
        pass
    log.error("stored inactivity settings are unusable: using hub.toml's")
    return {}


def floor_problem(cfg, tuned: dict[str, int], device_settings) -> str | None:
    """The inactivity floor in force against the activity intervals the platform set
    (docs/inactivity.md), naming where the floor comes from; None if they agree. A settings
    request cannot make them disagree; an edit of hub.toml (or values kept from before the
    check) can."""
    if not cfg.inactivity.enabled:
        return None
    floor = {**cfg.inactivity.values, **tuned}.get("floor_min", contract.FLOOR_DEFAULT_MIN)
    intervals = {d: v for d in cfg.devices
                 if (v := device_settings.in_force(d).get(F.S_SUMMARY_MIN)) is not None}
    why = contract.activity_conflict(floor, intervals)
    if why is None:
        return None
    where = ("the platform's inactivity_floor_min" if "floor_min" in tuned
             else f"{cfg.path}: inactivity.floor_min")
    return (f"{where}: {why}, or a moving resident can look still to the inactivity detector"
            " (the interval is the platform's: docs/inactivity.md)")


def _tuned(tuned: dict[str, int], changes: dict[str, int | None]) -> dict[str, int]:
    """The platform's inactivity values after `changes` (None clears one)."""
    return {k: v for k, v in {**tuned, **changes}.items() if v is not None}


class HomeWatch:
    def __init__(self, cfg, store, now_ms: int, core, bracelet_absent_min: int = 15):
        self.cfg, self.store, self.core = cfg, store, core
        self.supervisor = Supervisor()
        for d in cfg.devices:  # hub.toml's heartbeat, or the platform's (hub/device_settings)
            self.supervisor.add(d, core.device_settings.supervised_min(d) * 60_000, now_ms)
        self.bracelets = [d for d, dev in cfg.devices.items() if dev.kind == "bracelet"]
        self.bracelet_absent_ms = bracelet_absent_min * 60_000
        self._away_fed = False
        self.detector: I.Inactivity | None = None
        self.tuned: dict[str, int] = {}  # values the platform set (stored), over hub.toml's
        self.alarm_ref: str | None = None  # the inactivity alarm raised and not cleared yet
        self.prealarm_until: int | None = None  # mono ms
        self.prealarm_notice = PrealarmNotice()  # who heard it, who is owed its end
        if cfg.inactivity.enabled:
            self.tuned = stored_tuning(cfg, store)
            problem = floor_problem(cfg, self.tuned, core.device_settings)
            if problem:  # hub.toml edited since the platform's settings: runs, says so
                log.error("%s", problem)
            kw = self._kwargs()
            self.prealarm_ms = kw.get("prealarm_ms", 600_000)
            blob = store.get_state("inactivity")
            try:
                if blob:
                    saved, ref, left = unpack_state(blob)
                    self.detector = I.Inactivity.from_bytes(saved, now_ms & _TICKS, **kw)
                    self._resume(ref, left, now_ms)
                else:
                    self.detector = I.Inactivity(**kw)
            except ValueError as e:
                log.error("inactivity state in the store is unusable (%s): learning afresh", e)
                self.detector = I.Inactivity(**kw)
        self._saved_at = now_ms
        self.offline = self.supervisor.restore_offline(store.get_state(OFFLINE_STATE))
        self.coverage = self._load_coverage()
        # fault 210 raised before inactivity was turned off: cleared at the first tick
        self._coverage_off = self.detector is None and self.coverage.raised is not False
        if self.detector is None:
            self.coverage = None

    def _load_coverage(self) -> Coverage:
        blob = self.store.get_state("coverage")
        cov = Coverage()
        if blob:
            try:
                cov = Coverage.from_json(blob)
            except Exception as e:  # (an advisory measure must never keep the hub from starting)
                log.error("sensor coverage figures in the store are unusable (%s): measuring "
                          "afresh; whether fault 210 is in force is unknown until then", e)
                cov.raised = None
        if cov.raised:  # still in force: a clear after this restart sends its restoral
            self.core.faults[SENSOR_COVERAGE] = fault_text(
                cov.figure(day_of(self.core.clock.wall_ms())))
        elif cov.raised is None:  # maybe in force: a clear sends a restoral, a raise a fault
            self.core.faults[SENSOR_COVERAGE] = UNKNOWN_TEXT
        return cov

    def _resume(self, ref: str | None, left: int | None, now: int) -> None:
        """After a restart: the alarm or pre-alarm the restored detector is in goes on."""
        state = self.detector.state
        if state == I.ST_ALARM:
            self.alarm_ref = ref or self._unanswered_alarm()
            log.warning("restarted during an inactivity alarm (%s): a sign of life cancels it",
                        self.alarm_ref or "its ref is unknown")
        elif state == I.ST_PREALARM:
            # the time left when saved (an older hub saved none: a whole pre-alarm); never
            # beyond a whole one (prealarm_min may have changed), and the alarm still comes
            # from the detector: a longer pre-alarm on the devices ends with it
            left = self.prealarm_ms if not left or left < 0 else min(left, self.prealarm_ms)
            self.prealarm_until = now + max(left, 1)
            log.warning("restarted during an inactivity pre-alarm: %d s left", left // 1000)

    def _unanswered_alarm(self) -> str | None:
        """The newest inactivity alarm no operator acknowledged: the state an older hub saved
        during an alarm has no ref (it kept it in memory only)."""
        since = self.core.clock.wall_ms() - getattr(self.core, "alarm_repeat_for_ms", 86_400_000)
        found = [ev for ev in [*self.store.awaiting_help(since), *self.store.pending(limit=50)]
                 if ev.device_id == HUB_SELF and ev.mtype == E.H_INACTIVITY_ALARM]
        return max(found, key=lambda ev: ev.seq).ref if found else None

    # -- settings -------------------------------------------------------------------------
    def settings(self, changes: dict[str, int | None] | None = None) -> dict[str, int]:
        """The [inactivity] values in force: hub.toml's, then the platform's over them; with
        `changes`, as a settings request would leave them."""
        return {**self.cfg.inactivity.values, **_tuned(self.tuned, changes or {})}

    def _kwargs(self) -> dict:
        kw = detector_kwargs(self.settings())
        # With a bracelet, its absence says "away"; a door alone must not (shared/inactivity)
        kw["door_away"] = not self.bracelets
        return kw

    def tune(self, values: dict[str, int | None], now: int) -> str | None:
        """Apply the platform's inactivity settings (each within its bounds; None: clear its
        value, hub.toml's or the default applies) to the running detector, keeping its learned
        history; store them. Returns why not, or None."""
        if self.detector is None:
            return "inactivity detection is disabled on this hub"
        tuned = _tuned(self.tuned, values)
        conflict = contract.inactivity_conflict({**self.cfg.inactivity.values, **tuned})
        if conflict:
            return conflict
        self._feed(self.detector.tick(now & _TICKS, self._tod()), now)  # bring it up to now
        old, self.tuned = self.tuned, tuned
        try:
            det = I.Inactivity.from_bytes(self.detector.to_bytes(), now & _TICKS,
                                          **self._kwargs())
        except ValueError as e:
            self.tuned = old
            return str(e)
        self.detector = det
        self.prealarm_ms = self._kwargs().get("prealarm_ms", 600_000)
        self.store.put_state("inactivity_settings", json.dumps(tuned, sort_keys=True).encode())
        self.save(now)
        log.info("inactivity settings tuned by the platform: %s", values)
        return None

    def expect_heartbeat(self, dev_id: int) -> None:
        """The heartbeat interval to supervise changed (hub/device_settings.py): at once."""
        self.supervisor.set_interval(dev_id, self.core.device_settings.supervised_min(dev_id)
                                     * 60_000)

    # -- inputs ---------------------------------------------------------------------------
    def seen(self, dev_id: int, now: int) -> None:
        change = self.supervisor.seen(dev_id, now)
        if change == ONLINE:
            self.core.publisher.publish_availability(dev_id, True)
            if dev_id in self.offline:
                self.offline.discard(dev_id)
                self.core.hub_event(E.H_SUPERVISION_RESTORED, E.Mapped("supervision_restored"),
                                    device=dev_id, states_for=self._offline_state)

    def frame(self, dev, f: F.Frame, now: int) -> None:
        if self.detector is None:
            return
        src = None
        if f.mtype in _MOTION_TYPES and (f.mtype == F.T_MOTION or f.arg >> 8):
            src = I.SRC_DOOR if dev.entrance else I.SRC_MOTION
        elif f.mtype == F.T_DOOR:
            src = I.SRC_DOOR
        elif f.mtype in _PRESS_TYPES:
            src = I.SRC_PRESS
        if src is None:
            return
        if dev.kind == "bracelet":
            self._away_fed = False
        if self.detector.state == I.ST_AWAY:
            self.coverage.unreliable()  # the spell ending here was (partly) away
        self._feed(self.detector.activity(now & _TICKS, self._tod(), src), now)
        if self.core.clock_synced() is False:
            self.coverage.unreliable()  # its day may be any day (a Pi without RTC: 1970)
        if self.coverage.input(now, self.core.clock.wall_ms()):
            self._decide_coverage()

    def _decide_coverage(self) -> None:
        """Once a day: is this home seen often enough for a fast stillness alarm?"""
        verdict, fig = self.coverage.decide(), self.coverage.figure()
        # the decision is stored with its event: a crash cannot send it twice or lose it
        states = {"coverage": self.coverage.to_json()}
        if verdict > 0 and fig:
            self.core.hub_fault(SENSOR_COVERAGE, fault_text(fig), states=states)
        elif verdict < 0:
            log.info("sensor coverage: an emergency would now go unseen %d min on average",
                     fig["unseen_mean_min"] if fig else -1)
            self.core.hub_fault_cleared(SENSOR_COVERAGE, states=states)
        if verdict:
            self.save(self.core.clock.mono_ms())

    # -- time -----------------------------------------------------------------------------
    def _tod(self) -> int:
        tod_s, _, _ = self.core.clock.local()
        return tod_s * 1000

    def tick(self, now: int) -> None:
        for dev_id, state in self.supervisor.check(now):
            if state == OFFLINE:
                self.offline.add(dev_id)
                log.warning("device %08x offline: nothing heard for %d min", dev_id,
                            self.supervisor.window_ms(dev_id) // 60_000)
                self.core.publisher.publish_availability(dev_id, False)
                self.core.hub_event(E.H_SUPERVISION_MISSING, E.Mapped("supervision_missing"),
                                    device=dev_id, states_for=self._offline_state)
        if self.detector is None:
            if self._coverage_off:
                self._coverage_off = False
                fresh = {"coverage": Coverage().to_json()}
                self.core.hub_fault_cleared(SENSOR_COVERAGE, states=fresh)
                self.store.put_state("coverage", fresh["coverage"])
            return
        ev = self.detector.tick(now & _TICKS, self._tod())
        ev |= self._bracelet_away(now)
        self._feed(ev, now)
        # this spell says nothing about the sensors (a PIR or a bracelet offline: its motion
        # is missing; a radio restarting its scan after a quiet minute, or a button offline,
        # do not blind the detector: they count)
        if (self.detector.state == I.ST_AWAY or self.core.radio_health == "down"
                or any(self.cfg.devices[d].kind in ("pir", "bracelet") for d in self.offline)):
            self.coverage.unreliable()
        if now - self._saved_at >= SAVE_EVERY_MS:
            self.save(now)

    def _bracelet_away(self, now: int) -> int:
        """A bracelet not heard for a while: its wearer left the home (or took it off far)."""
        if not self.bracelets or self._away_fed or self.detector.state != I.ST_IDLE:
            return 0
        last = [self.supervisor.last_seen_ms(d) for d in self.bracelets]
        if all(t is not None and now - t > self.bracelet_absent_ms for t in last):
            self._away_fed = True
            return self.detector.activity(now & _TICKS, self._tod(), I.SRC_AWAY)
        return 0

    def _feed(self, ev: int, now: int) -> None:
        d = self.detector
        if not ev or d is None:
            return
        if ev & I.EV_PREALARM:
            self.prealarm_until = now + self.prealarm_ms
            log.warning("home still for %d min: pre-alarm, asking 'are you all right?'",
                        d.still_ms // 60_000)
        # The alarm and its cancel are committed together with the state that names the
        # alarm: a crash between two writes would leave an alarm no restart can cancel.
        if ev & I.EV_ALARM:
            self.prealarm_notice.ended()  # (nobody told when none ran)
            self.prealarm_until = None
            self.alarm_ref = self.core.hub_event(
                E.H_INACTIVITY_ALARM, E.Mapped("automatic_alarm", cause="inactivity"),
                states_for=lambda ref: {"inactivity": self._blob(now, ref)})
        if ev & I.EV_CLEARED:
            self.prealarm_notice.ended()
            self.prealarm_until = None
            if self.alarm_ref:
                self.core.hub_event(E.H_INACTIVITY_CANCEL,
                                    E.Mapped("cancel", cancels_ref=self.alarm_ref),
                                    states_for=lambda ref: {"inactivity": self._blob(now, None)})
                self.alarm_ref = None
            log.info("sign of life after %d min still: cleared", d.ended_still_ms // 60_000)
        if ev & I.EV_AWAY:
            log.info("resident away: inactivity alarms suspended")
        if ev & I.EV_HOME:
            log.info("resident home again")
        self.save(now)

    def prealarm_setting(self, now: int, dev_id: int) -> tuple[int, int]:
        """The setting an acknowledgement to `dev_id` carries: the running pre-alarm's minutes,
        or its end to a device told of it (hub/prealarm_notice.py), else none."""
        left = 0
        if self.prealarm_until is not None:
            left = max(1, -(-(self.prealarm_until - now) // 60_000))
        return self.prealarm_notice.setting(dev_id, left)

    def _offline_state(self, _ref: str) -> dict[str, bytes]:
        return {OFFLINE_STATE: self.supervisor.offline_blob()}

    def _blob(self, now: int, alarm_ref: str | None) -> bytes:
        assert self.detector is not None
        left = None if self.prealarm_until is None else max(1, self.prealarm_until - now)
        return pack_state(self.detector.to_bytes(), alarm_ref, left)

    def save(self, now: int) -> None:
        if self.detector is not None:
            self.store.put_state("inactivity", self._blob(now, self.alarm_ref))
            self.store.put_state("coverage", self.coverage.to_json())
            self._saved_at = now
