"""What the hub's whole-home inactivity detection can see in this home, in the installer's words.

The detector only knows "a sign of life somewhere": a PIR that saw motion, a bracelet that
moved, a press. A room where the resident sits or sleeps without a PIR looks like stillness,
so a normal afternoon there teaches the hub that hours of stillness are normal, and a real
collapse is caught hours late. On a real home with PIRs only over the shower, the basin and
the cooktop, no detector at all can do better than 3 h 35 min on average without false
alarms (docs/inactivity.md, `bound-any`). The installer is the one who can fix that, so the
visit report says which rooms are watched; from the fourth day the hub measures it too
(`hub status`, "sensor coverage", and fault 210 to the platform when it is too thin).
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.config import Device


def inactivity_coverage(devices: Iterable[Device], enabled: bool = True) -> list[str]:
    """Lines for the visit report: the rooms a PIR watches, and what is missing."""
    devs = list(devices)
    if not enabled:
        return ["whole-home inactivity: off on this hub ([inactivity] enabled = false)"]
    pirs = [d for d in devs if d.kind == "pir"]
    rooms = sorted({d.room or "(no room given)" for d in pirs if not d.entrance})
    doors = [d for d in pirs if d.entrance]
    bracelets = [d for d in devs if d.kind == "bracelet"]
    seen = [f"PIR in {', '.join(rooms)}"] if rooms else []
    if bracelets:
        seen.append("the bracelet's movement")
    out = [f"whole-home inactivity watches: {'; '.join(seen) if seen else 'nothing yet'}"]
    if not seen:
        out.append("  ! no PIR and no bracelet: the hub cannot tell a still home from a busy one; "
                   "fit a PIR in the room where the resident spends the day and one where they "
                   "sleep")
    elif not rooms:
        out.append("  ! no PIR: only the bracelet tells the hub the resident moves; when it is "
                   "off (charging, bathing) the home looks still")
    else:
        out.append("  check: is there a PIR where the resident sits during the day and where "
                   "they sleep? Rooms without one look still, and a collapse there is noticed "
                   "hours late")
        out.append("  after 3 days 'hub status' shows the sensor coverage it measured; over "
                   "180 min it raises fault sensor_coverage (210)")
    if not doors:
        out.append("  (no PIR marked --entrance: going out is known from a door sensor or the "
                   "bracelet only)")
    return out
