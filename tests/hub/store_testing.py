"""Helpers for the store tests (test_store_*.py): records, another connection to the store's
file, a connection that fails writes on demand. The `path` and `store` fixtures are in
conftest.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hub.store import Record
from shared.frame import T_HEARTBEAT

REPO = Path(__file__).resolve().parents[2]
HUB = "hub-7"
T0 = 1_760_000_000_000  # a wall-clock epoch ms
DAY = 86_400_000


def rec(
    dev: int,
    seq: int,
    mtype: int = T_HEARTBEAT,
    *,
    recv_ms: int | None = None,
    payload: str | None = None,
    attempt: int = 0,
) -> Record:
    recv = T0 + seq if recv_ms is None else recv_ms
    body = payload if payload is not None else json.dumps({"ref": "%s:%08x:%d" % (HUB, dev, seq)})
    return Record(
        device_id=dev,
        seq=seq,
        mtype=mtype,
        arg=0,
        event_ms=recv - 300,
        recv_ms=recv,
        payload_json=body,
        recv_mono_ms=seq,
        rssi=-60,
        attempt=attempt,
    )


def side_conn(path: Path) -> sqlite3.Connection:
    """Another connection, as another process (the status CLI, a restarted hub) sees the file."""
    return sqlite3.connect(path)


class FailingConn:
    """Proxy for the store's connection that fails writes (or, with `ops`, other statements:
    READS) like a dying SD card, on demand."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "COMMIT")
    READS = ("SELECT",)

    def __init__(self, real: sqlite3.Connection, ops: tuple[str, ...] = WRITES) -> None:
        self.real = real
        self.ops = ops
        self.failing = False

    def execute(self, sql: str, *args):
        if self.failing and sql.lstrip().split(None, 1)[0].upper() in self.ops:
            raise sqlite3.OperationalError("disk I/O error")
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self.real, name)
