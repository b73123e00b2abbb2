"""PUBACKs on the uplink: which publish each one answers, and whether it delivered the message.

`Unacked` is the uplink's mid table. paho calls `on_publish` while holding its own message lock.
A PUBACK that arrives before `publish()` has returned is parked until the mid is known (with
paho's own network thread that happened; driven by the event loop, PUBACKs are read only
between the loop's callbacks, so the parking is only a safeguard).

`rejection_of` reads a PUBACK's reason code as the delivery rules of hub/uplink.py say: success
below 0x80, and for an event with `require_subscriber` 0x10 "No matching subscribers" is a
refusal too (the broker dropped it). Under MQTT 3.1.1 there is no reason code (read as 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NO_MATCHING_SUBSCRIBERS = 0x10

Tag = tuple[str, str | None]  # (what was published: "event", "state", ...; the event's ref)


@dataclass(frozen=True)
class Rejection:
    code: int  # the PUBACK reason code
    name: str

    def __str__(self) -> str:
        return f"0x{self.code:02X} {self.name}"


class Unacked:
    """Publishes awaiting their PUBACK, by mid. Not locked: the uplink calls it under its lock,
    which it never holds while calling into paho."""

    def __init__(self) -> None:
        self.tags: dict[int, Tag] = {}  # mid -> (what, ref), unacknowledged
        self.early: dict[int, Any] = {}  # mid -> reason: PUBACKs that beat publish() returning

    def published(self, mid: int, tag: Tag) -> Any:
        """publish() returned `mid`: the reason of its PUBACK if that came first, else None."""
        early = self.early.pop(mid, None)
        if early is None:
            self.tags[mid] = tag
        return early

    def acked(self, mid: int, reason: Any) -> Tag | None:
        """A PUBACK: the tag of its publish, or None (parked) if publish() has not returned."""
        tag = self.tags.pop(mid, None)
        if tag is None:
            self.early[mid] = reason
        return tag

    def clear(self) -> None:
        self.tags.clear()
        self.early.clear()


def rejection_of(what: str, code: int, reason: Any, require_subscriber: bool) -> Rejection | None:
    """None when a PUBACK with reason `code` means delivered, else the Rejection."""
    # 0x10 matters for events only: a retained message is stored even when nobody subscribes
    refused = code >= 0x80 or (
        code == NO_MATCHING_SUBSCRIBERS and what == "event" and require_subscriber
    )
    return Rejection(code, reason.getName()) if refused else None
