"""Where acknowledgements go, and which of them go to the device's own address (docs/protocol.md,
"Replay protection"; the radio serves those first and bounds the others:
hub/radio_ack_limits.py). The device's address is that of its last new frame, kept in the
store across restarts; the core tells the radio, with each ack, whether it goes there.

Review demos (/tmp/review_diff/demo): test_restart_relay_first (after a restart, a recording of
a stored SOS replayed from 3 addresses took the radio's places before the device's own retry,
which the radio then refused for good) and test_relay_first_then_power_loss (a relay's copy of
a new SOS heard first, then the device re-sends it from NVS after a power loss, age restarted:
never acknowledged).
"""

from __future__ import annotations

import time

from pipeline_testing import MIN, Home, addressed, advert

from hub.radio_ack_limits import Addresses
from shared import frame as F

BUTTON = 0xA1B2
DEV_ADDR = "AA:BB:CC:00:B2:01"
NEW_ADDR = "AA:BB:CC:00:B2:02"
RELAYS = [f"5A:00:00:00:00:{i:02X}" for i in range(3)]


def answered(home: Home, address: str = DEV_ADDR) -> None:
    """The daemon reports an ack written to `address`."""
    home.core.ack_written(BUTTON, F.S_NONE, True, address)


def restart_then_relays_replay(home: Home, frame: bytes) -> list:
    """The hub restarts (its wall clock behind: no RTC, no time service yet) and, 30 s on,
    each relay replays `frame` (a stale duplicate); returns the acks addressed from then."""
    home.restart()
    acks = addressed(home, own=True)
    home.clock.wall -= 10 * MIN
    home.clock.advance(30_000)
    for relay in RELAYS:
        assert home.core.on_frame(relay, frame, -80) == "duplicate"
    return acks


def test_the_core_tells_which_acks_go_to_the_devices_own_address(home):
    acks = addressed(home, own=True)
    sos = advert(home, BUTTON, 1, F.T_SOS)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "stored"
    home.clock.advance(2_000)
    retry = advert(home, BUTTON, 1, F.T_SOS, age_ms=2_000, attempt=3)
    assert home.core.on_frame(RELAYS[0], retry, -80) == "duplicate"  # relayed live
    assert home.core.on_frame(DEV_ADDR, retry, -60) == "duplicate"
    home.core.on_delivered(home.store.ref_for(BUTTON, 1))  # pushed to where the device is
    assert acks == [
        (BUTTON, DEV_ADDR, 1, F.ACK_STORED, True),
        (BUTTON, RELAYS[0], 1, F.ACK_STORED, False),
        (BUTTON, DEV_ADDR, 1, F.ACK_STORED, True),
        (BUTTON, DEV_ADDR, 1, F.ACK_DELIVERED, True),
    ]


def test_the_devices_address_survives_a_restart(home):
    """Stored with the frame that moved it, in that frame's commit, and only when it moves;
    that an ack was written there, once."""
    commits: list[set[str]] = []
    add = home.store.add
    home.store.add = lambda rec, states: commits.append(set(states)) or add(rec, states=states)
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 1, F.T_HEARTBEAT), -60)
    answered(home)
    assert home.core.on_frame(DEV_ADDR, advert(home, BUTTON, 2, F.T_HEARTBEAT), -60)
    assert commits == [{"replay:0000a1b2", "address:0000a1b2"}, {"replay:0000a1b2"}]
    assert home.store.get_state("address:0000a1b2") == f"{DEV_ADDR} 1".encode()
    home.restart()
    rt = home.core.devices[BUTTON]
    assert (rt.address, rt.answered) == (DEV_ADDR, True)
    acks = addressed(home, own=True)
    sos = advert(home, BUTTON, 3, F.T_SOS)  # from another address now: the address moves
    assert home.core.on_frame(NEW_ADDR, sos, -60) == "stored"
    assert acks[-1] == (BUTTON, NEW_ADDR, 3, F.ACK_STORED, True)
    home.restart()
    rt = home.core.devices[BUTTON]
    assert (rt.address, rt.answered) == (NEW_ADDR, False)  # not answered there yet
    acks = addressed(home, own=True)
    home.core.on_delivered(home.store.ref_for(BUTTON, 3))
    assert acks == []  # not heard since the restart: not pushed (RECENT_MS), as before
    home.clock.advance(3_000)
    retry = advert(home, BUTTON, 3, F.T_SOS, age_ms=3_000, attempt=2)
    assert home.core.on_frame(NEW_ADDR, retry, -60) == "duplicate"
    assert acks == [(BUTTON, NEW_ADDR, 3, F.ACK_DELIVERED, True)]


def test_after_a_restart_stale_replays_from_elsewhere_take_no_place_of_the_devices_own(home):
    """Review demo test_restart_relay_first: a Pi without RTC restarts with its wall clock 10
    min behind, so every copy of the stored SOS looks stale; a recording of it is replayed
    from 3 addresses before the device's own retry. Then all 4 were acknowledged, relays
    first, and the radio took the first replayer for the device's own address and refused
    the device's ack for good (tests/hub/test_radio_ack_relays.py has the radio's side).
    Now the hub knows the device's address at once: the replays are dropped, the device's
    retry is acknowledged as its own, and the radio's limits admit it."""
    sos = advert(home, BUTTON, 1, F.T_SOS)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "stored"
    answered(home)
    acks = restart_then_relays_replay(home, sos)
    assert acks == [] and home.core.counters["duplicate_stale_dropped"] == 3
    retry = advert(home, BUTTON, 1, F.T_SOS, age_ms=30_000, attempt=4)
    assert home.core.on_frame(DEV_ADDR, retry, -60) == "duplicate"
    assert acks == [(BUTTON, DEV_ADDR, 1, F.ACK_STORED, True)]
    radio = Addresses(time.monotonic)  # what the radio makes of it (AckSender.send)
    radio.owned(DEV_ADDR, BUTTON)
    assert radio.admit(DEV_ADDR, BUTTON, [(r, BUTTON) for r in RELAYS])


def test_after_a_restart_the_devices_retry_is_its_own_while_its_address_is_unproven(home):
    """The address restored, but no ack written to it since it became the address (the
    relay case below): the replays are acknowledged, as other addresses' (bounded by the
    radio), and the device's retry still as its own, served first."""
    sos = advert(home, BUTTON, 1, F.T_SOS)
    assert home.core.on_frame(DEV_ADDR, sos, -60) == "stored"
    acks = restart_then_relays_replay(home, sos)
    retry = advert(home, BUTTON, 1, F.T_SOS, age_ms=30_000, attempt=4)
    assert home.core.on_frame(DEV_ADDR, retry, -60) == "duplicate"
    assert [(a[1], a[4]) for a in acks] == [(r, False) for r in RELAYS] + [(DEV_ADDR, True)]
    answered(home)  # the device took it: from now on replays from elsewhere are dropped
    n = len(acks)
    assert home.core.on_frame(RELAYS[0], sos, -80) == "duplicate"
    assert len(acks) == n
    home.restart()  # and that is kept too
    assert home.core.devices[BUTTON].answered


def test_a_relays_copy_heard_first_then_a_power_loss_resend_is_acknowledged(home):
    """Review demo test_relay_first_then_power_loss: a relay's copy of a new SOS is heard
    before the device's own, so the relay's address is taken for the device's; the relay
    never answers. The device loses power and re-sends the SOS from NVS with its age
    restarted at 0: stale by construction, from an address that is not the one known. It was
    dropped, never acknowledged, and the device holds back its routine frames while it
    retries, so no new frame ever moved the address back."""
    acks = addressed(home, own=True)
    sos = advert(home, BUTTON, 1, F.T_SOS)
    assert home.core.on_frame(RELAYS[0], sos, -80) == "stored"
    home.core.ack_written(BUTTON, F.S_NONE, False, RELAYS[0])  # the relay never answers
    home.clock.advance(5 * MIN)
    recovered = advert(home, BUTTON, 1, F.T_SOS, age_ms=0, attempt=0)
    assert home.core.on_frame(DEV_ADDR, recovered, -60) == "duplicate"
    assert acks[-1] == (BUTTON, DEV_ADDR, 1, F.ACK_STORED, False)
    home.clock.advance(10_000)
    again = advert(home, BUTTON, 1, F.T_SOS, age_ms=10_000, attempt=1)
    home.restart()  # also across a restart
    acks = addressed(home, own=True)
    assert home.core.on_frame(DEV_ADDR, again, -60) == "duplicate"
    assert acks == [(BUTTON, DEV_ADDR, 1, F.ACK_STORED, False)]
    assert home.core.devices[BUTTON].address == RELAYS[0]  # no duplicate moves it
    # a routine frame's stale copy from elsewhere is still dropped
    beat = advert(home, BUTTON, 2, F.T_HEARTBEAT)
    assert home.core.on_frame(RELAYS[0], beat, -80) == "stored"
    home.clock.advance(10 * MIN)
    n = len(acks)
    assert home.core.on_frame(DEV_ADDR, beat, -60) == "duplicate"
    assert len(acks) == n and home.core.counters["duplicate_stale_dropped"] == 1
