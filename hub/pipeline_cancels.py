"""Which alarm a bracelet's FALL_CANCELLED cancels at the platform.

A cancel after the cancel window names the FALL_CONFIRMED (docs/protocol.md). The bracelet
stops sending that FALL_CONFIRMED the moment the wearer cancels (a late confirmed fall
after its cancel would open an alarm nobody closes), so when the wearer cancels before the
hub heard it (out of range for a minute, a busy radio) the hub gets a cancel naming a frame
it never received, while the platform holds the FALL_SUSPECTED that FALL_CONFIRMED would
have superseded: open and repeated for a day. That FALL_SUSPECTED is the device's latest
one before the named frame (the bracelet confirms the fall of its current window), so the
cancel names it instead.
"""

from __future__ import annotations

import logging

from hub.store import Store
from shared import frame as F

log = logging.getLogger("carebeacon.hub")

# How far back to look for the FALL_SUSPECTED: between it and its FALL_CONFIRMED lies only
# the cancel window (<= 30 s, a hub setting), a few routine frames at most. Only cancels
# naming an unknown frame pay for the look-ups (one indexed read each).
SCAN_BACK = 64


def fall_cancel_target(store: Store, dev_id: int, seq: int) -> int:
    """The seq the FALL_CANCELLED naming `seq` cancels: `seq` unless the hub never received it
    and an earlier FALL_SUSPECTED of the device explains it (module docstring)."""
    if store.get(store.ref_for(dev_id, seq)) is not None:
        return seq
    for s in range(seq - 1, max(0, seq - SCAN_BACK), -1):
        ev = store.get(store.ref_for(dev_id, s))
        if ev is None or not ev.alarm:
            continue  # a frame the hub never got, or a routine one: look further back
        if ev.mtype == F.T_FALL_SUSPECTED:
            log.info(
                "FALL_CANCELLED from %08x names seq %d, which never reached the hub: "
                "it cancels that fall's FALL_SUSPECTED, seq %d",
                dev_id,
                seq,
                s,
            )
            return s
        break  # another alarm in between: the unknown frame is not that fall's confirmation
    return seq
