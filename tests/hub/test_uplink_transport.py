"""Uplink transports and protocol versions: a Unix socket with mutual TLS, MQTT 3.1.1 configured
or as the fallback when v5 is refused, callbacks on the asyncio loop; the broker fixture
cleans up."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from uplink_testing import COUNTY, Client, Hub, P, config, event, wait_until

from broker import Broker
from hub import contract
from hub.uplink import Uplink, UplinkConfig

pytestmark = pytest.mark.timeout(30)


def test_unix_socket_with_mutual_tls(broker):
    platform = Client(broker).wait_ready()
    with Hub(config(broker, unix_socket=broker.socket_path)) as hub:
        hub.add(*event(1))
        wait_until(lambda: hub.delivered == [event(1)[0]], what="delivery over the Unix socket")
    platform.close()


def test_mqtt_311_configured(broker):
    """3.1.1 works (persistent session, delivery), but a PUBACK cannot say "refused": an ACL denial
    looks like a delivery. This is why v5 is the default and 3.1.1 only a fallback."""
    platform = Client(broker).wait_ready()
    with Hub(config(broker, protocol="3.1.1")) as hub:
        hub.add(*event(1))
        wait_until(lambda: hub.delivered == [event(1)[0]], what="delivery")
        assert hub.connects[0][1] == "3.1.1"
        forged = event(1, hub_id="hub-b")
        hub.uplink.publish_event(forged[0], f"{P}/hub-b/event", contract.encode(forged[1]))
        wait_until(lambda: len(hub.delivered) == 2, what="PUBACK")
        time.sleep(0.2)
        assert (
            forged[0] not in platform.refs() and hub.rejected == []
        )  # silently dropped by the broker
    platform.close()


class FakeV311Broker:
    """Just enough MQTT 3.1.1 to refuse v5 CONNECTs (CONNACK 0x01) and accept 3.1.1 ones."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connects: list[tuple[int, int, str]] = []  # (protocol level, connect flags, client id)
        self.published: list[str] = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self, conn):
        with conn:
            try:
                while not self.stop:
                    head = self._read(conn, 1)[0]
                    length, shift = 0, 0
                    while True:
                        b = self._read(conn, 1)[0]
                        length |= (b & 0x7F) << shift
                        shift += 7
                        if not b & 0x80:
                            break
                    body = self._read(conn, length)
                    kind = head & 0xF0
                    if kind == 0x10:  # CONNECT
                        name_len = struct.unpack("!H", body[:2])[0]
                        level, flags = body[2 + name_len], body[3 + name_len]
                        cid = ""
                        if level == 4:
                            cid_len = struct.unpack("!H", body[6 + name_len : 8 + name_len])[0]
                            cid = body[8 + name_len : 8 + name_len + cid_len].decode()
                        self.connects.append((level, flags, cid))
                        conn.sendall(bytes([0x20, 2, 0, 1 if level != 4 else 0]))
                        if level != 4:
                            return
                    elif kind == 0x30:  # PUBLISH
                        tlen = struct.unpack("!H", body[:2])[0]
                        self.published.append(body[2 : 2 + tlen].decode())
                        if head & 0x06:
                            conn.sendall(bytes([0x40, 2]) + body[2 + tlen : 4 + tlen])
                    elif kind == 0x80:  # SUBSCRIBE
                        conn.sendall(bytes([0x90, 3]) + body[:2] + b"\x01")
                    elif kind == 0xC0:  # PINGREQ
                        conn.sendall(b"\xd0\x00")
                    elif kind == 0xE0:
                        return
            except (EOFError, OSError):
                return

    def close(self):
        self.stop = True
        self.sock.close()


def test_falls_back_to_311_when_v5_refused():
    fake = FakeV311Broker()
    cfg = UplinkConfig(
        hub_id="hub-a",
        county=COUNTY,
        host="127.0.0.1",
        port=fake.port,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.2,
    )
    try:
        with Hub(cfg) as hub:
            wait_until(lambda: hub.connects, what="3.1.1 connection")
            assert hub.connects == [(False, "3.1.1")] and hub.uplink.stats["fallbacks"] == 1
            assert [c[0] for c in fake.connects] == [5, 4]
            level, flags, cid = fake.connects[1]
            assert cid == "hub-a"
            assert not flags & 0x02  # clean_session = False: a persistent session
            assert flags & 0x04 and flags & 0x20 and (flags >> 3) & 3 == 1  # will, retained, QoS 1
            hub.add(*event(1))
            wait_until(lambda: hub.delivered == [event(1)[0]], what="PUBACK")
            assert f"{P}/hub-a/state" in fake.published
    finally:
        fake.close()


def test_callbacks_run_on_the_asyncio_loop(broker):
    platform = Client(broker).wait_ready()

    async def main():
        loop = asyncio.get_running_loop()
        me = threading.get_ident()
        seen: list[tuple[str, int]] = []
        done = asyncio.Event()

        def delivered(ref):
            seen.append((ref, threading.get_ident()))
            done.set()

        def connected(session_present, protocol):
            seen.append(("connected", threading.get_ident()))
            ref, msg = event(1)
            assert uplink.publish_event(ref, uplink.event_topic, msg)

        uplink = Uplink(config(broker), on_delivered=delivered, on_connected=connected, loop=loop)
        uplink.start()
        try:
            await asyncio.wait_for(done.wait(), 5)
        finally:
            await loop.run_in_executor(None, uplink.close)
        assert [s[0] for s in seen] == ["connected", event(1)[0]]
        assert {s[1] for s in seen} == {me}

    asyncio.run(main())
    platform.close()


def test_broker_fixture_cleans_up():
    b = Broker(county=COUNTY)
    b.start()
    path, pid = b.dir, b._proc.pid
    b.close()
    assert not path.exists() and not b.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert Path(b.socket_path).exists() is False
