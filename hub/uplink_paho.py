"""The uplink's paho client: protocol, TLS, in-flight window, will, session.

`hub.uplink.Uplink` makes a client with `new_client`, sets its callbacks and gives it the broker
with `connect_async` (which only records it: hub/uplink_loop.py makes the attempts and the
retries, with the uplink's delays); it calls `arm_will` again on every connect and `no_delay`
once connected.

TLS: the context is built from the files before every attempt (hub/uplink_tls.py), so a file
that cannot be used is an outage, not a crash, and a fixed one is used without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub import contract

if TYPE_CHECKING:
    from hub.uplink_config import UplinkConfig
    from hub.uplink_tls import FreshContext


def new_client(
    c: UplinkConfig,
    protocol: str,
    state_topic: str,
    paho_log: logging.LoggerAdapter,
    tls: FreshContext | None,
) -> mqtt.Client:
    """A paho client for `protocol` ("5" or "3.1.1"), its will armed; callbacks not set."""
    v5 = protocol == "5"
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=c.hub_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else False,
        transport="unix" if c.unix_socket else "tcp",
        # paho would otherwise answer a 3.1.1 refusal by reconnecting (as 3.1) inside loop_read,
        # blocking the event loop; the uplink's own retries handle every refusal instead
        reconnect_on_failure=False,
    )
    client.enable_logger(paho_log)  # type: ignore[arg-type]  # paho only calls .log()
    if tls is not None:
        client.tls_set_context(tls)  # type: ignore[arg-type]  # paho only calls wrap_socket
    client.max_inflight_messages_set(c.max_inflight)  # must precede connect
    arm_will(client, c, protocol, state_topic)
    return client


def check_config(c: UplinkConfig) -> None:
    """Refuse a configuration the uplink cannot use (ValueError)."""
    if c.protocol not in ("auto", "5", "3.1.1"):
        raise ValueError("protocol must be auto, 5 or 3.1.1")
    if c.ca_file and not c.host:
        raise ValueError("TLS needs host: the broker's name, which its certificate must carry")


def arm_will(client: mqtt.Client, c: UplinkConfig, protocol: str, state_topic: str) -> None:
    will = contract.build_state(
        hub=c.hub_id,
        county=c.county,
        online=False,
        reason="connection_lost",
        software=c.software,
    )
    props = None
    if protocol == "5" and c.will_delay > 0:
        props = Properties(PacketTypes.WILLMESSAGE)
        props.WillDelayInterval = c.will_delay
    client.will_set(state_topic, contract.encode(will), qos=1, retain=True, properties=props)


def connect_async(client: mqtt.Client, c: UplinkConfig, protocol: str) -> None:
    host = c.unix_socket or c.host
    if protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = c.session_expiry
        client.connect_async(host, c.port, c.keepalive, clean_start=False, properties=props)
    else:
        client.connect_async(host, c.port, c.keepalive)


def no_delay(client: mqtt.Client) -> None:
    """Send small packets at once: with Nagle on, a response waits ~40 ms behind the PUBACK
    before it (measured on loopback). Unix sockets have no such option."""
    sock = client.socket()
    if sock is not None and getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
