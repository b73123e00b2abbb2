"""Random operation sequences against a model of the store (hypothesis state machine): adds,
retries, marks, prunes, a failing disk (FailingConn), crash and restart."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import tempfile

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from store_testing import DAY, HUB, T0, FailingConn, rec

from hub.store import DELIVERED, HELP, PENDING, Store
from shared.frame import T_HEARTBEAT, T_SOS
from shared.replay import R_DUPLICATE, ReplayWindow


class StoreMachine(RuleBasedStateMachine):
    """Adds, retries, marks, prunes, failing disk, crash + restart, against a model.

    A crash drops the Store without closing it (like kill -9: what is only in memory is gone);
    the restarted hub reloads its replay windows from the store, as the daemon does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="store-sm-")
        self.path = os.path.join(self.dir, "hub.db")
        self.now = T0
        self.arrival = 0
        self.next_seq = {1: 0, 2: 0, 3: 0}
        # ref -> dict(dev, seq, alarm, arrival, state, ever_durable)
        self.model: dict[str, dict] = {}
        self.windows = {d: ReplayWindow() for d in self.next_seq}
        self._open()

    def _open(self) -> None:
        self.s = Store(
            self.path,
            hub_id=HUB,
            max_events=8,
            retention_days=1,
            retry_interval_s=0,
            overflow_max=10_000,
        )
        self.conn = FailingConn(self.s._db)  # type: ignore[arg-type]
        self.s._db = self.conn  # type: ignore[assignment]

    def teardown(self) -> None:
        self.s._db = self.conn.real  # type: ignore[assignment]
        self.s.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _settled(self) -> None:
        """After a successful commit everything queued is on disk."""
        if self.s.fault is None and not self.s.stats()["held"]:
            for m in self.model.values():
                m["ever_durable"] = True
                m["durable_state"] = m["state"]

    def _add(self, dev: int, seq: int, alarm: bool, local: bool = False) -> None:
        ref = self.s.ref_for(dev, seq)
        w = self.windows[dev]
        w.accept(seq)
        r = rec(dev, seq, T_SOS if alarm else T_HEARTBEAT, recv_ms=self.now)
        if local:  # nothing to send: stored as delivered
            r = dataclasses.replace(r, payload_json="", delivered_ms=self.now)
        a = self.s.add(r, states={"replay:%d" % dev: w.to_bytes()})
        assert a.is_new and a.ref == ref
        assert a.durable == (not self.conn.failing)
        self.arrival += 1
        state = DELIVERED if local else PENDING
        self.model[ref] = {
            "dev": dev,
            "seq": seq,
            "alarm": alarm,
            "arrival": self.arrival,
            "local": local,
            "state": state,
            "durable_state": state if a.durable else PENDING,
            "ever_durable": a.durable,
        }
        self._settled()

    @rule(
        dev=st.sampled_from([1, 2, 3]),
        alarm=st.booleans(),
        local=st.sampled_from([False, False, True]),
    )
    def add_new(self, dev: int, alarm: bool, local: bool) -> None:
        self.next_seq[dev] += 1
        self._add(dev, self.next_seq[dev], alarm, local)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def add_again(self, data) -> None:
        ref = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[ref]
        a = self.s.add(rec(m["dev"], m["seq"], T_SOS if m["alarm"] else T_HEARTBEAT))
        assert not a.is_new and a.ref == ref
        self._settled()

    @precondition(lambda self: self.model)
    @rule(data=st.data(), help_=st.booleans())
    def mark(self, data, help_: bool) -> None:
        ref = data.draw(st.sampled_from(sorted(self.model)))
        ok = (self.s.mark_help if help_ else self.s.mark_delivered)(ref, self.now)
        assert ok
        m = self.model[ref]
        m["state"] = max(m["state"], HELP if help_ else DELIVERED)
        self._settled()

    @rule(days=st.integers(0, 2))
    def prune(self, days: int) -> None:
        self.now += days * DAY
        r = self.s.prune(self.now)
        if r.error is None and r.over_capacity:
            with sqlite3.connect(self.path) as c:
                assert (
                    c.execute(
                        "SELECT COUNT(*) FROM events WHERE alarm = 0 AND state > 0"
                    ).fetchone()[0]
                    == 0
                )
        for ref in list(self.model):
            if self.s.get(ref) is None:
                m = self.model.pop(ref)
                assert not m["alarm"] and m["state"] > PENDING, "pruned %s %r" % (ref, m)
        self._settled()

    @rule(failing=st.booleans())
    def disk(self, failing: bool) -> None:
        self.conn.failing = failing
        if not failing:
            assert self.s.flush_overflow()
            self._settled()

    @rule()
    def crash_and_restart(self) -> None:
        self.conn.real.close()  # no flush: memory is lost, as with kill -9
        self._open()
        for d in self.windows:
            blob = self.s.get_state("replay:%d" % d)
            self.windows[d] = ReplayWindow.from_bytes(blob) if blob else ReplayWindow()
        lost = []
        for ref, m in list(self.model.items()):
            e = self.s.get(ref)
            if e is None:
                assert not m["ever_durable"], "durable event lost: %s" % ref
                # Not durable, so never acknowledged STORED: the device retries it, and its
                # replay window never got onto the disk ahead of it.
                assert self.windows[m["dev"]].check(m["seq"]) != R_DUPLICATE
                del self.model[ref]
                lost.append((m["dev"], m["seq"], m["alarm"], m["local"]))
                continue
            assert m["durable_state"] <= e.state <= m["state"]
            m["state"] = m["durable_state"] = e.state
            m["ever_durable"] = True
        for dev, seq, alarm, local in lost:  # the devices' retries arrive: new, and stored
            self._add(dev, seq, alarm, local)

    @invariant()
    def pending_matches_model_in_uplink_order(self) -> None:
        want = [r for r, m in self.model.items() if m["state"] == PENDING]
        got = self.s.pending(1000, alarms_first=False)
        assert [e.ref for e in got] == sorted(want, key=lambda r: self.model[r]["arrival"])
        assert len({(e.device_id, e.seq) for e in got}) == len(got)

        def promoted(r: str) -> bool:
            m = self.model[r]
            return any(
                self.model[o]["alarm"]
                and self.model[o]["dev"] == m["dev"]
                and self.model[o]["arrival"] >= m["arrival"]
                for o in want
            )

        first = [e.ref for e in self.s.pending(1000)]
        assert first == sorted(want, key=lambda r: (not promoted(r), self.model[r]["arrival"]))

    @invariant()
    def the_status_summary_counts_what_pending_reads(self) -> None:
        want = {r for r, m in self.model.items() if m["state"] == PENDING}
        alarms = {r for r in want if self.model[r]["alarm"]}
        n, refs = self.s.pending_summary(alarms=1000)
        assert n == len(want) and sorted(refs) == sorted(alarms)
        n, refs = self.s.pending_summary(alarms=1)
        assert n == len(want) and len(refs) == min(1, len(alarms)) and set(refs) <= alarms

    @invariant()
    def alarms_and_durable_undelivered_events_are_there(self) -> None:
        for ref, m in self.model.items():
            e = self.s.get(ref)
            assert e is not None, ref
            assert e.state == m["state"] and e.alarm == m["alarm"]
            if m["ever_durable"]:
                assert e.durable, ref


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
