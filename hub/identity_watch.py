"""Hub fault 211 `identity_in_use`: another client connects with this hub's identity.

The uplink recognises the takeover (hub/uplink_takeover.py); this decides when the county
hears of it and when it is over. Raised at the takeover's start. Cleared only once no
takeover was seen for `HOLD_S` while the hub was connected: a copied key used now and then
(a script connecting every few minutes) would otherwise raise and clear it all day, and
after a restart the hub cannot tell a stopped clone from one that has not come back yet.
The raised flag is kept in the store, so a restart neither forgets to clear it nor raises
it again.
"""

from __future__ import annotations

IDENTITY_IN_USE = 211  # hub fault code (hub/contract_events.py HUB_FAULTS)
HOLD_S = 3600.0  # an hour connected without a takeover: the other client is gone
TEXT = (
    "another client connects with this hub's certificate and key (a cloned SD card, a copied"
    " key): find it, or revoke the certificate and issue the hub a new one"
)
STATE = "identity_in_use"  # store state entry: b"1" while raised, b"0" once cleared
UNKNOWN_TEXT = ("whether another client uses this hub's identity is unknown (its stored state "
                "was unreadable): watching afresh")


def stored_flag(blob: bytes | None) -> bool | None:
    """The raised flag from the store entry; None (unknown) for anything unreadable."""
    return {None: False, b"0": False, b"1": True}.get(blob)


class IdentityWatch:
    def __init__(self, raised: bool | None = False) -> None:
        # None: unknown (the stored flag was unreadable): the next verdict either way is sent
        self.raised = raised
        self._quiet = 0.0  # seconds connected without a takeover since the last one
        self._last: float | None = None  # the previous step's time

    def step(self, now_s: float, taken: bool, connected: bool) -> int:
        """Called every tick (monotonic seconds). +1: raise the fault, -1: clear it, 0."""
        last = now_s if self._last is None else self._last
        self._last = now_s
        if taken:
            self._quiet = 0.0
            if self.raised is not True:
                self.raised = True
                return 1
            return 0
        if self.raised is not False and connected:
            self._quiet += max(0.0, now_s - last)
            if self._quiet >= HOLD_S:
                self.raised = False
                self._quiet = 0.0
                return -1
        return 0
