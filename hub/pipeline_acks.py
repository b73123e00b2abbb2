"""The hub core's acknowledgements to devices, and the settings that ride on them.

`DeviceAcks` is the part of `hub.pipeline.HubCore` that builds each acknowledgement (status,
local clock, a pending setting or the pre-alarm) and hands it to the daemon's `acker`, and
that learns from `ack_written()` which settings a device now has and whether its address
answered. `DeviceRuntime` is what the core knows of one configured device while it runs:
where it was last heard and what it was last told. The device's address (where its last new
frame came from) is kept in the store, so that a restarted hub knows it at once.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub import contract
from shared import frame as F

if TYPE_CHECKING:
    from collections import Counter

    from hub.device_settings import DeviceSettings
    from hub.home import HomeWatch
    from hub.pipeline import Clock
    from hub.store import Store

log = logging.getLogger("carebeacon.hub")

_UNACKED_KEPT = 16  # frames per device awaiting their first ack: > the device's 6 outbox slots
RECENT_MS = 20_000  # a device heard this recently is likely still advertising: ack it now


def address_state(dev_id: int) -> str:
    """The store's state name for a device's address (DeviceAcks._load_address)."""
    return f"address:{dev_id:08x}"


@dataclass
class DeviceRuntime:
    # Where the device's last new frame came from: its acks go there, as its own (the radio
    # serves those first); `answered`: an ack to it was written since it became the address
    # (a relay that carried a new frame first may never answer: ReplayChecks._duplicate).
    # Both are kept in the store (`saved`: as last stored).
    address: str | None = None
    answered: bool = False
    saved: tuple[str | None, bool] = (None, False)
    last_mono_ms: int | None = None
    last_wall_ms: int | None = None
    rssi: int | None = None
    battery: int | None = None
    bad_tags: int = 0
    settings: dict[int, int] = field(default_factory=dict)  # setting id -> value, not yet sent
    sent: dict[int, int] = field(default_factory=dict)  # setting id -> value last put in an ack
    # Frames accepted by this run of the hub and not yet acknowledged: only their first ack
    # may carry a setting (see DeviceAcks._ack).
    unacked: deque[int] = field(default_factory=lambda: deque(maxlen=_UNACKED_KEPT))
    # seq -> (monotonic ms the event happened (receive time minus age), ms first heard), for
    # frames accepted by this run: tells a retransmission from a replayed recording (_fresh)
    origins: dict[int, tuple[int, int]] = field(default_factory=dict)
    too_old: int = 0  # frames refused below the replay window
    reused: int = 0  # frames whose number an earlier, different frame had (never acknowledged)
    # (seq, type, arg) -> (as `origins`), of frames that reused a number: tells the device's
    # retransmissions from a replayed recording (ReplayChecks._reused)
    reused_origins: dict[tuple[int, int, int], tuple[int, int]] = field(default_factory=dict)
    # rate-limited faults (ReplayChecks._report): (fault code, alarm class?) -> mono ms of the
    # last report, and -> how many were not reported since
    reported: dict[tuple[int, bool], int] = field(default_factory=dict)
    unreported: dict[tuple[int, bool], int] = field(default_factory=dict)


class DeviceAcks:
    """Acknowledging frames to devices; a base of `hub.pipeline.HubCore`, which sets these."""

    store: Store
    clock: Clock
    acker: Any
    codecs: dict[int, F.Codec]
    devices: dict[int, DeviceRuntime]
    counters: Counter[str]
    home: HomeWatch
    device_settings: DeviceSettings

    def _ack(
        self, dev_id: int, seq: int, mtype: int, status: int, *, address: str | None = None
    ) -> None:
        """Acknowledge frame `seq` with `status`: to `address` (where a repeat of the frame just
        came from), else to where the device's last new frame came from. `mtype`: the stored
        frame's type, under the ack's tag (docs/protocol.md): a device holding another frame
        under this number (reused after a power loss) refuses the ack. The acker is told
        whether the ack goes to the device's own address (its last new frame's): only those
        are served first, others (relays, replays) are bounded (hub/radio_ack_limits.py)."""
        rt = self.devices[dev_id]
        address = address or rt.address
        if address is None:
            return
        own = address == rt.address
        tod, weekday, synced = self.clock.local()
        clock = F.encode_clock(tod, weekday) if synced else 0
        setting, value = self.home.prealarm_setting(self.clock.mono_ms(), dev_id)
        # A pending setting rides only on a frame's first ack. The device ignores an ack that
        # does not raise the frame's status, setting and all, and forgets a routine frame at its
        # first ack: on a repeat (a retried advert heard twice) or a later status the setting
        # would be lost while its write "succeeded". "First" is known only for frames this run
        # of the hub accepted: after a restart a repeat of an older frame may have been
        # acknowledged before, so it carries no setting (the setting waits for a new frame).
        # (The pre-alarm rides on every ack: it is repeated anyway.)
        first = seq in rt.unacked
        if first:
            rt.unacked.remove(seq)
        if setting == F.S_NONE and rt.settings and first:
            setting = min(rt.settings)
            value = rt.settings[setting]
            rt.sent[setting] = value
        data = self.codecs[dev_id].encode_ack(
            bytearray(F.ACK_LEN), seq, mtype, status, clock, setting, value
        )
        self.counters["acks"] += 1
        self.acker(dev_id, address, bytes(data), setting, own)

    def ack_written(
        self, dev_id: int, setting: int, ok: bool, address: str | None = None,
        value: int | None = None,
    ) -> None:
        """The daemon's report on one acknowledgement write (to `address`). `value`: the
        setting's value that write carried (`ack_value`); None: the last one sent. Not simply
        the last one sent: an older ack still being written when the platform changed the
        value carries the old one, and its success must not stand for the new one's."""
        rt = self.devices.get(dev_id)
        if rt is None:
            return
        if value is None:
            value = rt.sent.get(setting)
        if ok and setting == F.S_PREALARM and value == 0:
            self.home.prealarm_notice.heard_over(dev_id)  # it knows the pre-alarm is over
        if ok and setting in rt.sent and value is not None:
            if rt.settings.get(setting) == value:
                del rt.settings[setting]  # the device has it (changed since: that is sent)
            if self.device_settings.heard(dev_id, setting, value):  # it has this one now
                self.home.expect_heartbeat(dev_id)  # supervised at that interval from now
        if ok and address is not None and address == rt.address and not rt.answered:
            rt.answered = True
            blob = self._address_blob(rt)
            if blob is not None:  # once per address: ESP32 addresses are stable
                self.store.put_state(address_state(dev_id), blob)
                rt.saved = (rt.address, rt.answered)
        self.counters["ack_written" if ok else "ack_failed"] += 1

    # -- the device's address, kept in the store -------------------------------------------
    def _load_address(self, dev_id: int) -> None:
        """At start: the address the device's last new frame came from, before the restart."""
        blob = self.store.get_state(address_state(dev_id))
        if blob:
            address, _, answered = blob.decode("ascii", "replace").partition(" ")
            rt = self.devices[dev_id]
            rt.address, rt.answered = address, answered == "1"
            rt.saved = (rt.address, rt.answered)

    @staticmethod
    def _moved(rt: DeviceRuntime, address: str) -> None:
        """A new frame came from `address` (HubCore.on_frame)."""
        if address != rt.address:
            rt.address, rt.answered = address, False

    @staticmethod
    def _address_blob(rt: DeviceRuntime) -> bytes | None:
        """What to store for the device's address; None if that is stored already."""
        if rt.address is None or (rt.address, rt.answered) == rt.saved:
            return None
        return f"{rt.address} {int(rt.answered)}".encode("ascii", "replace")

    def _ack_if_near(self, ref: str, status: int) -> None:
        """Tell a device a new status at once if it is probably still listening. The ack is
        bound to the type of the frame stored under `ref`: without that record, none is sent."""
        try:
            _, dev_id, seq = contract.parse_ref(ref)
        except ValueError:
            return
        rt = self.devices.get(dev_id or -1)
        if (
            rt
            and rt.last_mono_ms is not None
            and self.clock.mono_ms() - rt.last_mono_ms < RECENT_MS
        ):
            ev = self.store.get(ref)
            if ev is None or (ev.device_id, ev.seq) != (dev_id, seq):
                self.counters["ack_no_record"] += 1
                log.warning(
                    "not acknowledging %s with status %d: no stored record of it, so the"
                    " frame type the acknowledgement must be bound to is unknown", ref, status,
                )  # fmt: skip
                return
            self._ack(dev_id, seq, ev.mtype, status)

    def devices_told_help(self, dev_id: int, seq: int) -> None:
        """An operator acknowledged this device's alarm: tell it now if it listens."""
        self._ack_if_near(self.store.ref_for(dev_id, seq), F.ACK_HELP)


def ack_value(data: bytes) -> int:
    """The setting value an acknowledgement carries (docs/protocol.md: bytes 10-11)."""
    return int.from_bytes(data[10:12], "big")
