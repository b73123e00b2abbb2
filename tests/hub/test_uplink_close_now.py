"""A close where nothing can wait for the event loop (called on the loop's thread, or once the
loop stopped: hub/uplink_loop.py `Driver.close_now`) is still orderly: state "shutdown", then
DISCONNECT, and no last will.

It used to close right after writing DISCONNECT without waiting for the shutdown state's
PUBACK, which then met a closed socket: Linux answered with RST, and mosquitto, reading the RST
before the DISCONNECT, published the will (29 closes in 60). It now reads the PUBACK first
(bounded: 1 s). Counted here with a real subscriber over repeated closes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from uplink_testing import Client, P, config, wait_until

from hub.uplink import Uplink

pytestmark = pytest.mark.timeout(120)

CLOSES = 40


def connected_on_a_loop_of_its_own(broker) -> tuple[Uplink, asyncio.AbstractEventLoop,
                                                    threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    uplink = Uplink(config(broker), loop=loop)
    uplink.start()
    wait_until(lambda: uplink.connected, what="connect")
    return uplink, loop, thread


def close_on_the_loop(broker) -> float:
    """Connect, then close from a callback on the uplink's own event loop; returns the close's
    duration."""
    uplink, loop, thread = connected_on_a_loop_of_its_own(broker)
    took: list[float] = []

    def close() -> None:
        t0 = time.monotonic()
        uplink.close()  # on the loop's thread: close_now
        took.append(time.monotonic() - t0)

    loop.call_soon_threadsafe(close)
    wait_until(lambda: took, what="the close")
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
    return took[0]


def close_after_the_loop_stopped(broker) -> float:
    uplink, loop, thread = connected_on_a_loop_of_its_own(broker)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    t0 = time.monotonic()
    uplink.close()  # the loop is not running: close_now, from this thread
    took = time.monotonic() - t0
    loop.close()
    return took


@pytest.mark.parametrize("how", ["on the loop", "after the loop stopped"])
def test_close_now_waits_for_the_puback_so_no_will_is_sent(broker, how):
    platform = Client(broker, subscribe=(f"{P}/hub-a/state",)).wait_ready()
    close = close_on_the_loop if how == "on the loop" else close_after_the_loop_stopped
    took = [close(broker) for _ in range(CLOSES)]
    wait_until(lambda: len(platform.on("/state")) >= 2 * CLOSES, 10, "every state")
    time.sleep(0.5)  # and any will that comes
    reasons = [json.loads(m.payload)["reason"] for m in platform.on("/state")]
    assert reasons.count("shutdown") == CLOSES
    assert reasons.count("connection_lost") == 0, f"{reasons.count('connection_lost')} wills"
    assert max(took) < 1.0  # bounded; a PUBACK on loopback takes well under a millisecond
    platform.close()
