"""The uplink checks the broker's name in its certificate on the Unix-socket transport too.

Every server certificate of the county CA passes the chain check (another broker's, a bridge's,
any without an extended key usage), so the chain alone does not say "this is the broker": its
name does. paho would check the socket's path there, so the uplink used to switch the name
check off on a Unix socket. Here a broker of the same CA whose certificate names another host
is refused on both transports, and the broker named in the configuration (`UplinkConfig.host`)
is accepted.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from uplink_testing import COUNTY, Client, Hub, config, event, wait_until

from broker import Broker
from hub.uplink import Uplink

pytestmark = pytest.mark.timeout(30)

OTHER = "other-broker.example"  # the only name in the imposter's certificate


def name_server(broker: Broker, name: str) -> None:
    """Replace the (not yet started) broker's certificate by one of its own CA naming only
    `name` (uses the fixture's private CA: its key is never written to disk)."""
    ca = broker._ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    Path(broker.server_cert).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(broker.server_key).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture
def imposter():
    """A broker with the county CA's certificate for another name (the hubs' ACL and all)."""
    b = Broker(county=COUNTY, hubs=("hub-a", "hub-b"))
    name_server(b, OTHER)
    try:
        b.start()
        yield b
    finally:
        b.close()


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_a_broker_certificate_for_another_name_is_refused(imposter, transport, caplog):
    caplog.set_level(logging.DEBUG, logger="carebeacon.uplink")
    if transport == "unix":  # the hub expects a broker named localhost behind the socket
        cfg = config(imposter, unix_socket=imposter.socket_path, host="localhost")
    else:  # 127.0.0.1, which the imposter's certificate does not name either
        cfg = config(imposter)
    with Hub(cfg) as hub:
        wait_until(
            lambda: hub.connects or caplog.text.count("mismatch, certificate is not") >= 3,
            what="three attempts refused for the broker's name (or a connection)",
        )
        assert hub.connects == [] and not hub.uplink.connected  # not [(False, "5")]
        assert not hub.add(*event(1))
    assert " as hub-a " not in imposter.log()  # the broker never had the hub as a client


def test_the_configured_broker_name_is_accepted_over_the_unix_socket(broker, imposter):
    platform = Client(broker).wait_ready()
    with Hub(config(broker, unix_socket=broker.socket_path, host="localhost")) as hub:
        hub.add(*event(1))
        wait_until(lambda: platform.refs() == [event(1)[0]], what="delivery over the socket")
    platform.close()
    # the imposter's certificate is good for the name it carries: the name is what is checked
    with Hub(config(imposter, unix_socket=imposter.socket_path, host=OTHER)) as hub:
        hub.wait_connected()


def test_tls_without_a_broker_name_is_refused_at_once(broker):
    with pytest.raises(ValueError, match="broker's name"):
        Uplink(config(broker, unix_socket=broker.socket_path, host=""))
