"""Platform → hub requests (docs/mqtt.md): each answered on its response topic with the
caller's transaction id and a SCAIP result code. Handlers are idempotent: a request the
broker delivers twice gets the same answer and changes nothing more."""

from __future__ import annotations

import logging

from hub import contract, events as E
from hub.contract import Request, Result
from hub.store_types import HELP
from shared import frame as F

log = logging.getLogger("carebeacon.requests")

IDENTIFY_S = 30  # long enough to walk into the room and spot the blinking one


def handle(core, req: Request) -> None:
    try:
        result, text, data = _HANDLERS[req.kind](core, req)
    except Exception:  # a bug must not leave the platform waiting without an answer
        log.exception("request %s %r failed", req.kind, req.transaction)
        result, text, data = Result.NOT_TREATED, "internal error in the hub", None
    core.publisher.respond(req, result, text=text, data=data)


def _ack(core, req: Request):
    """An operator acknowledged an alarm: help is on the way; the elder is told."""
    ev = core.store.get(req.ref)
    if ev is None:
        return Result.WRONG_DATA, f"no event {req.ref} on this hub", None
    first = ev.state < HELP
    core.store.mark_help(req.ref, core.clock.wall_ms())
    core.stop_repeating(req.ref)
    if first:
        log.info("operator %s acknowledged %s", req.operator or "-", req.ref)
        if ev.device_id:
            core.devices_told_help(ev.device_id, ev.seq)
    return Result.OK, None, {"ref": req.ref}


def _settings(core, req: Request):
    """Device settings travel with each device's next acknowledgement and are stored (sent
    again after a restart; the supervisor follows the heartbeat); inactivity settings (the
    whole home's) apply to the hub's detector at once, or none do. A value None clears the
    platform's: hub.toml's (or the default) applies again."""
    targets = [req.device_id] if req.device_id is not None else list(core.cfg.devices)
    for d in targets:
        if d not in core.cfg.devices:
            return Result.WRONG_DATA, f"unknown device {d:08x}", None
    for sid, v in req.settings:  # the contract refuses these already (hub/contract_requests)
        if not (0 < sid < len(F.SETTING_LO)) or v is not None and not (
                F.SETTING_LO[sid] <= v <= F.SETTING_HI[sid]):
            return Result.WRONG_DATA, f"setting {sid}: {v} is not a value devices keep", None
    values = dict(req.settings)
    if req.inactivity and core.home.detector is None:
        return Result.NOT_TREATED, "inactivity detection is disabled on this hub", None
    why = _activity_conflict(core, targets, values, dict(req.inactivity))
    if why:  # checked before anything changes: nothing is applied
        return Result.WRONG_DATA, why, None
    if req.inactivity:
        why = core.home.tune(dict(req.inactivity), core.clock.mono_ms())
        if why:
            return Result.WRONG_DATA, why, None
        if not req.settings:
            return Result.OK, "applied to the home's inactivity detector", {
                "inactivity": core.home.settings()}
    if values:  # stored: they win over hub.toml's after a restart (hub/device_settings.py)
        core.device_settings.set(targets, values)
    for d in targets:
        now, pending = core.device_settings.in_force(d), core.devices[d].settings
        for sid in values:  # a cleared value never set has nothing to send
            if sid in now:
                pending[sid] = now[sid]
            else:
                pending.pop(sid, None)
        if F.S_HEARTBEAT_MIN in values:
            core.home.expect_heartbeat(d)  # a longer one at once, a shorter once it is heard
    data: dict = {"devices": [contract.device_hex(d) for d in targets]}
    if req.inactivity:
        data["inactivity"] = core.home.settings()
    # accepted, in force once each device next reports (docs/mqtt.md: result 4, hold)
    return Result.HOLD, "devices get it at their next contact", data


def _activity_conflict(core, targets: list[int], values: dict, inactivity: dict) -> str | None:
    """Every device's activity interval against the inactivity floor, as this request would
    leave them (docs/inactivity.md). Only values the hub sends count: it does not know one a
    device was provisioned with (15 min unless the installer chose another)."""
    if core.home.detector is None:
        return None
    floor = core.home.settings(inactivity).get("floor_min", contract.FLOOR_DEFAULT_MIN)
    intervals = {}
    for d in core.cfg.devices:
        v = core.device_settings.in_force(d).get(F.S_SUMMARY_MIN)
        if d in targets and F.S_SUMMARY_MIN in values:
            v = values[F.S_SUMMARY_MIN]  # None, cleared: the default, below any floor
        if v is not None:
            intervals[d] = v
    return contract.activity_conflict(floor, intervals)


def _test(core, req: Request):
    """Report what the hub knows of a device now (a test of the hub-to-device path)."""
    dev = core.cfg.devices.get(req.device_id)
    if dev is None:
        return Result.WRONG_DATA, f"unknown device {req.device_id:08x}", None
    rt = core.devices[req.device_id]
    state = core.home.supervisor.state(req.device_id)
    data = {"device": E.contract_device(dev).to_json(), "state": state}
    if rt.last_wall_ms is not None:
        data["last_seen"] = contract.iso_time(rt.last_wall_ms / 1000)
    if rt.rssi is not None:
        data["rssi"] = rt.rssi
    if rt.battery is not None:
        data["battery"] = rt.battery
    return Result.OK, None, data


def _identify(core, req: Request):
    """The device blinks and chirps for IDENTIFY_S once it next hears the hub (the hub cannot
    call a device: it rides on the next acknowledgement, like a setting)."""
    if req.device_id not in core.cfg.devices:
        return Result.WRONG_DATA, f"unknown device {req.device_id:08x}", None
    core.devices[req.device_id].settings[F.S_IDENTIFY] = IDENTIFY_S
    return Result.HOLD, "the device shows it at its next contact", {
        "device": contract.device_hex(req.device_id), "seconds": IDENTIFY_S}


def _list(core, req: Request):
    out = []
    for d, dev in sorted(core.cfg.devices.items()):
        st = core.home.supervisor.state(d)
        out.append(contract.device_entry(E.contract_device(dev),
                                         None if st == "unknown" else st == "online"))
    return Result.OK, None, {"devices": out}


_HANDLERS = {"ack": _ack, "settings": _settings, "test": _test, "identify": _identify,
             "list_devices": _list}


