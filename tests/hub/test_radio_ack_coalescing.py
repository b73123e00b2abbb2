"""Acks waiting for one device are merged: a newer status covers an older one (covers()), a
burst costs one connection, the newest ack survives a timed-out connect, settings count."""

from __future__ import annotations

import asyncio
import time

import pytest
from radio_testing import BUTTON, ack, radio_hearing, warnings

from hil.sim.bluez import BlueZDouble
from hub.radio_ack import covers
from shared.frame import ACK_DELIVERED, ACK_HELP, ACK_STORED, S_HEARTBEAT_MIN, S_PREALARM

pytestmark = pytest.mark.timeout(20)


def test_covers() -> None:
    stored, delivered = ack(7, ACK_STORED, clock=1), ack(7, ACK_DELIVERED, clock=2)
    assert covers(delivered, stored) and covers(stored, stored)
    assert not covers(stored, delivered)  # a lower status
    assert not covers(ack(8, ACK_HELP), stored)  # another frame
    heartbeat = ack(7, ACK_STORED, setting=S_HEARTBEAT_MIN, value=30)
    assert covers(ack(7, ACK_HELP, setting=S_HEARTBEAT_MIN, value=30), heartbeat)
    assert not covers(ack(7, ACK_HELP, setting=S_HEARTBEAT_MIN, value=20), heartbeat)
    assert not covers(ack(7, ACK_HELP), heartbeat)  # the setting did not reach the device
    assert covers(heartbeat, stored)  # a setting it did not ask for does no harm


def test_a_burst_of_acks_for_one_frame_is_coalesced_newest_status_last(run) -> None:
    """A device retransmits its alarm until acknowledged, and the hub answers every copy it
    hears, while the alarm's status climbs. Not one connection per copy: the acks waiting for
    the device are merged, and the device ends up with the newest status."""

    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        bz.set_connect_behaviour(BUTTON, delay_s=0.2)
        async with radio_hearing(bz, BUTTON) as radio:
            acks = [ack(7, ACK_STORED + i // 10, clock=i) for i in range(30)]  # 10 of each
            calls = []
            for a in acks:
                calls.append(asyncio.create_task(radio.send_ack(BUTTON, a)))
                await asyncio.sleep(0.02)
            assert await asyncio.gather(*calls) == [True] * 30  # each covered by what was written
            assert 1 <= len(got) <= 3, [g[5] for g in got]  # was 30
            statuses = [g[5] for g in got]
            assert statuses == sorted(set(statuses))  # never an older status after a newer one
            assert got[-1][5] == ACK_HELP and covers(got[-1], acks[-1])
            assert bz.calls["Connect"] == len(got)

            # copies heard at once, before any connect: one write, the newest
            got.clear()
            burst = [ack(9, ACK_STORED, clock=i) for i in range(20)]
            results = await asyncio.gather(*(radio.send_ack(BUTTON, a) for a in burst))
            assert results == [True] * 20 and got == [burst[-1]]

    run(body)


def test_a_timed_out_connect_does_not_lose_the_newest_ack(run, logs) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        async with radio_hearing(bz, BUTTON, connect_timeout_s=0.5) as radio:
            bz.set_connect_behaviour(BUTTON, hang=True)
            t0 = time.monotonic()
            stored = asyncio.create_task(radio.send_ack(BUTTON, ack(7, ACK_STORED)))
            await asyncio.sleep(0.1)  # its connect hangs
            delivered = ack(7, ACK_DELIVERED, clock=1)
            later = asyncio.create_task(radio.send_ack(BUTTON, delivered))
            await asyncio.sleep(0.1)
            bz.set_connect_behaviour(BUTTON)  # the next connect works
            assert await later  # after the timeout and the backoff, not refused by it
            assert 0.5 + 0.3 - 0.05 < time.monotonic() - t0 < 2.0
            assert await stored  # the DELIVERED written in its place covers it
            assert got == [delivered]
        text = warnings(logs)
        assert "failed (timeout)" in text and "not sent" not in text

    run(body)


def test_an_older_status_is_never_written_after_a_newer_one_and_settings_count(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        bz.set_connect_behaviour(BUTTON, delay_s=0.2)
        async with radio_hearing(bz, BUTTON) as radio:
            help_ = ack(7, ACK_HELP)
            first = asyncio.create_task(radio.send_ack(BUTTON, help_))
            await asyncio.sleep(0.05)  # HELP for frame 7 is being written
            late = asyncio.create_task(radio.send_ack(BUTTON, ack(7, ACK_DELIVERED)))
            heartbeat = ack(8, ACK_STORED, setting=S_HEARTBEAT_MIN, value=30)
            replaced = asyncio.create_task(radio.send_ack(BUTTON, heartbeat))
            await asyncio.sleep(0.01)
            prealarm = ack(8, ACK_STORED, clock=1, setting=S_PREALARM, value=5)
            newest = asyncio.create_task(radio.send_ack(BUTTON, prealarm))
            results = await asyncio.gather(first, late, replaced, newest)
            # the late DELIVERED is covered by HELP; the heartbeat setting never reached the
            # device (the pipeline keeps it for the next ack), the pre-alarm did
            assert results == [True, True, False, True]
            assert got == [help_, prealarm]  # frames 7 and 8 each get their ack

    run(body)
