"""Adverts claiming devices the hub has no key for (security review 2, finding 3): anyone can
send them, so the hub keeps only the most recently heard ids for pairing, counts the rest, and
logs a few new ids an hour one by one, then one summary.
"""

from __future__ import annotations

import logging

from pipeline_testing import MIN

from hub.pipeline_unknown import UNKNOWN_KEPT, UNKNOWN_LOGGED

HOUR = 60 * MIN


def stranger(dev_id: int) -> bytes:
    return bytes([0x10]) + dev_id.to_bytes(4, "big") + bytes(19)  # no key needed


def unknown_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "unknown device" in r.getMessage()]


def test_a_flood_of_unknown_ids_is_bounded_and_logged_hourly(home, caplog):
    """demo3: every random id stayed in HubCore.unknown, and status.json listed them all."""
    caplog.set_level(logging.INFO, logger="carebeacon.hub")
    n = 5_000
    for i in range(n):
        assert home.core.on_frame("11:22:33:44:55:66", stranger(0x7000_0000 + i), -50) == (
            "unknown"
        )
    unknown = home.core.unknown
    assert len(unknown) == UNKNOWN_KEPT and unknown.dropped == n - UNKNOWN_KEPT
    assert unknown.frames == n and home.core.counters["unknown"] == n
    assert sorted(d for d, _ in unknown.items()) == [0x7000_0000 + i for i in range(n - 64, n)]
    assert len(unknown_lines(caplog)) == UNKNOWN_LOGGED
    assert not home.pub.events and not home.acks
    # an id heard again is the most recent: the flood pushes out the others first
    assert home.core.on_frame("AA:AA:AA:AA:AA:01", stranger(0x7000_0000 + n - 64), -40)
    assert home.core.on_frame("AA:AA:AA:AA:AA:02", stranger(0x0BAD_CAFE), -40)
    assert (0x7000_0000 + n - 64) in unknown and 0x7000_0000 + n - 63 not in unknown
    assert unknown[0x7000_0000 + n - 64].count == 2
    assert unknown[0x7000_0000 + n - 64].address == "AA:AA:AA:AA:AA:01"
    # the hour ends: one summary line, then a new hour logs a few new ids again
    home.clock.advance(HOUR)
    home.core.tick()
    [summary] = [r.getMessage() for r in caplog.records if "unknown devices:" in r.getMessage()]
    assert f"{n + 2} frames from {n + 1} new ids" in summary
    home.core.tick()
    assert len([r for r in caplog.records if "unknown devices:" in r.getMessage()]) == 1
    caplog.clear()
    for i in range(10):
        home.core.on_frame("11:22:33:44:55:66", stranger(0x6000_0000 + i), -50)
    assert len(unknown_lines(caplog)) == UNKNOWN_LOGGED


def test_a_quiet_neighbour_is_logged_once_and_no_summary(home, caplog):
    caplog.set_level(logging.INFO, logger="carebeacon.hub")
    for _ in range(3):
        for _ in range(100):
            home.core.on_frame("11:22:33:44:55:66", stranger(0x0BAD_CAFE), -80)
        home.clock.advance(HOUR)
        home.core.tick()
    assert len(unknown_lines(caplog)) == 1
    assert not [r for r in caplog.records if "unknown devices:" in r.getMessage()]
    assert home.core.unknown[0x0BAD_CAFE].count == 300
