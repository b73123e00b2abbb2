"""What the uplink needs to know: the broker, the hub's identity and TLS files, its timing
(hub/uplink.py; the daemon builds it from hub.toml's [platform], hub/daemon.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class UplinkConfig:
    hub_id: str  # also the MQTT client id and the CN of the hub's certificate
    county: str
    host: str = "localhost"  # with TLS also the name the broker's certificate must carry
    port: int = 8883
    unix_socket: str | None = None  # connect here instead of host:port (TLS still checks host)
    ca_file: str | None = None  # TLS when set; cert_file/key_file: the client certificate
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: int = 30  # s; the broker declares the hub gone (last will) after 1.5x this
    session_expiry: int = 7 * 24 * 3600  # v5 SessionExpiryInterval: requests queue this long
    protocol: str = "auto"  # "auto": v5, falling back to 3.1.1 if refused; "5"; "3.1.1"
    max_inflight: int = 20
    reconnect_min_delay: float = 1.0  # seconds, doubling up to the max
    reconnect_max_delay: float = 60.0
    will_delay: int = 0  # v5 WillDelayInterval: a reconnect within this many s hides the will
    require_subscriber: bool = True  # PUBACK 0x10 "No matching subscribers" = not delivered
    software: str | None = None  # reported in the state message
