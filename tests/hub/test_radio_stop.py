"""Stopping the radio: waiting acks end, no task is left running, it starts again; bounded()
gives up on an operation whose cancellation hangs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakAdapter
from radio_testing import ACK, BUTTON, FastRadio, Heard, ack, advertise_until_heard, radio_for

from bluez_testing import eventually
from hil.sim.bluez import BlueZDouble
from hub.radio_bluez import bounded
from shared.frame import ACK_DELIVERED, ACK_STORED

pytestmark = pytest.mark.timeout(20)


def test_stop_ends_acks_waiting_out_a_backoff(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard = Heard()
        radio = radio_for(heard, connect_timeout_s=0.3)
        radio.ack_backoff_s = {**FastRadio.ack_backoff_s, "timeout": (30.0, 30.0)}
        await radio.start()
        await advertise_until_heard(bz, heard, BUTTON, 1)
        bz.set_connect_behaviour(BUTTON, hang=True)
        first = asyncio.create_task(radio.send_ack(BUTTON, ack(7, ACK_STORED)))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(radio.send_ack(BUTTON, ack(7, ACK_DELIVERED)))
        await asyncio.sleep(0.5)  # the connect timed out; DELIVERED waits 30 s
        assert not first.done() and not second.done()
        t0 = time.monotonic()
        await radio.stop()
        assert time.monotonic() - t0 < 1.0
        assert await asyncio.wait_for(asyncio.gather(first, second), 0.5) == [False, False]
        assert bz.calls["Connect"] == 1

    run(body)


def _ours(task: asyncio.Task[Any]) -> bool:
    """A task the double runs (it serves bluetoothd's side) is not the radio's to stop."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is None or Path("hil", "sim").as_posix() not in Path(code.co_filename).as_posix()


def test_stop_leaves_no_task_running(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        await BleakAdapter.get()  # bleak's per-loop manager and its bus watcher: not ours
        baseline = asyncio.all_tasks()
        got: list[bytes] = []
        bz.on_write(BUTTON, got.append)
        heard = Heard()
        radio = radio_for(heard, silence_restart_s=0.5, connect_timeout_s=5)
        await radio.start()
        await advertise_until_heard(bz, heard, BUTTON, 1)
        assert await radio.send_ack(BUTTON, ACK)
        bz.set_connect_behaviour(BUTTON, hang=True)
        hung = asyncio.create_task(radio.send_ack(BUTTON, ACK))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await radio.stop()
        assert time.monotonic() - t0 < 1.0
        assert await asyncio.wait_for(hung, 0.5) is False
        assert not await radio.send_ack(BUTTON, ACK)  # stopped: refused at once
        assert not bz.discovering

        def leftovers() -> set[asyncio.Task[Any]]:
            current = asyncio.current_task()
            return {t for t in asyncio.all_tasks() - baseline if t is not current and _ours(t)}

        await eventually(lambda: not leftovers(), timeout=1)
        await asyncio.sleep(0.3)  # and nothing comes back (no watchdog tick, no poll)
        assert not leftovers()

    run(body)


def test_start_stop_start_again(run) -> None:
    async def body(bz: BlueZDouble) -> None:
        heard = Heard()
        radio = radio_for(heard)
        await radio.start()
        await radio.stop()
        await radio.start()
        try:
            assert radio.health.state == "scanning"
            await advertise_until_heard(bz, heard, BUTTON, 1)
        finally:
            await radio.stop()

    run(body)


def test_bounded_gives_up_on_an_operation_whose_cancellation_hangs() -> None:
    """A wedged D-Bus: the call ignores its timeout and its cleanup hangs too."""

    async def main() -> None:
        release = asyncio.Event()

        async def wedged() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                await release.wait()  # e.g. bleak's Disconnect on a bus that never answers

        tasks: set[asyncio.Task[Any]] = set()
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="no answer within 0.2 s"):
            await bounded(wedged(), 0.2, "wedged call", tasks, grace=0.1)
        assert time.monotonic() - t0 < 0.5
        assert len(tasks) == 1  # still tracked, for Radio.stop()
        release.set()
        await asyncio.sleep(0.01)
        assert not tasks

    asyncio.run(main())
