"""A real mosquitto: mutual TLS, an ACL, persistence, stop/start on the same port.

The tests' broker (tests/broker.py re-exports this module), the demo's stand-in county
platform (tools/demo.py) and the hardware rig's local platform (hil/real/rig.py).

    with Broker(county="c1", hubs=["hub-a", "hub-b"]) as b:
        b.tls("hub-a")      -> TlsFiles(ca, cert, key) for a client whose certificate CN is "hub-a"
        b.stop(); b.start() -> graceful outage (retained messages and sessions saved, restored)
        b.kill()            -> SIGKILL (no save)
        b.pause(); b.resume() -> SIGSTOP / SIGCONT: connections stay up, nothing is answered

Certificates are made with the `cryptography` package (EC P-256, in-process, ~1 ms each) rather than
the openssl CLI: no subprocesses, no openssl.cnf for SAN/EKU, the same result on every OpenSSL
version. `b.rogue` is a client certificate with a valid-looking CN (the first hub) signed by a
different CA, for refusal tests.

Broker settings (see docs/mqtt.md, Security): `require_certificate`, `use_identity_as_username`
(username = certificate CN), `use_username_as_clientid` (a hub cannot take over another's session by
choosing its client id), `allow_anonymous false`, `per_listener_settings true`, and an ACL that
denies
by default: each hub gets only its own subtree, each platform CN everything under carebeacon/v1/#.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PREFIX = "carebeacon/v1"


def mosquitto_path() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if not found:
        raise RuntimeError("mosquitto not found: apt-get install mosquitto (./run installs it)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    ca: str
    cert: str
    key: str


class _Ca:
    """A throwaway certificate authority."""

    def __init__(self, name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (
            self._builder(self.name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def _builder(self, subject: x509.Name, public_key) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
        )

    def issue(self, cn: str, *, server: bool = False) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        b = (
            self._builder(subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            san = [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def acl_text(county: str, platforms: list[str]) -> str:
    """The least-privilege ACL: deny by default, hubs confined to their own subtree by CN (%u)."""
    base = f"{PREFIX}/{county}/%u"
    lines = [
        "# carebeacon ACL: anything not granted here is denied.",
        "# Hubs (certificate CN = hub id = username = client id): only their own subtree.",
        f"pattern write {base}/event",
        f"pattern write {base}/state",
        f"pattern write {base}/device/+/availability",
        f"pattern write {base}/response/+",
        f"pattern read {base}/request/+",
        "",
        "# County platform clients: everything under carebeacon/v1.",
    ]
    for p in platforms:
        lines += [f"user {p}", f"topic readwrite {PREFIX}/#", ""]
    return "\n".join(lines) + "\n"


class Broker:
    """A mosquitto process with its own CA, certificates, ACL and persistence, in a temp dir."""

    def __init__(
        self,
        county: str = "test-county",
        hubs: tuple[str, ...] | list[str] = ("hub-a", "hub-b"),
        platforms: tuple[str, ...] | list[str] = ("platform", "platform-2"),
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        verbose: bool = False,
        new_session: bool = False,
    ):
        self.county = county
        self.hubs = list(hubs)
        self.platforms = list(platforms)
        self.host = host
        self.port = port or free_port()
        self.verbose = verbose
        self.new_session = new_session  # own process group: a terminal's Ctrl-C does not reach it
        self.dir = Path(tempfile.mkdtemp(prefix="carebeacon-broker-"))
        # Run as root, mosquitto drops to the `mosquitto` user before reading acl_file and certs:
        # a 0700 temp dir makes that fail. Everything here is throwaway test material.
        os.chmod(self.dir, 0o755)
        self._proc: subprocess.Popen | None = None
        self._log_file = self.dir / "mosquitto.log"
        self._files: dict[str, TlsFiles] = {}
        self._write_material()

    # ----- material -----
    def _write(self, name: str, data: bytes | str, mode: int = 0o644) -> str:
        path = self.dir / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        os.chmod(path, mode)
        return str(path)

    def _write_material(self) -> None:
        ca = _Ca("carebeacon test CA")
        self.ca_file = self._write("ca.pem", ca.pem())
        cert, key = ca.issue("localhost", server=True)
        self.server_cert, self.server_key = (
            self._write("server.pem", cert),
            self._write("server.key", key),
        )
        for cn in self.hubs + self.platforms:
            self._files[cn] = self.issue(cn, ca)
        other = _Ca("some other CA")
        cert, key = other.issue(self.hubs[0] if self.hubs else "rogue")
        self.rogue = TlsFiles(
            self.ca_file, self._write("rogue.pem", cert), self._write("rogue.key", key, 0o600)
        )
        self._ca = ca
        self.acl_file = self._write("acl", acl_text(self.county, self.platforms))
        # The database and the Unix socket are written after mosquitto drops to its own user.
        persist = self.dir / "var"
        persist.mkdir()
        if os.geteuid() == 0:
            shutil.chown(persist, "mosquitto", "mosquitto") if _has_user("mosquitto") else os.chmod(
                persist, 0o777
            )
        self.socket_path = str(persist / "mqtt.sock")
        conf = [
            "per_listener_settings true",
            "persistence true",
            f"persistence_location {persist}/",
            "autosave_interval 1",
            f"log_dest file {self._log_file}" if not self.verbose else "log_dest stderr",
            "log_type all" if self.verbose else "log_type error\nlog_type warning\nlog_type notice",
            "connection_messages true",
            "max_queued_messages 100000",
        ]
        listener = [
            "allow_anonymous false",
            f"cafile {self.ca_file}",
            f"certfile {self.server_cert}",
            f"keyfile {self.server_key}",
            "require_certificate true",
            "use_identity_as_username true",
            "use_username_as_clientid true",
            f"acl_file {self.acl_file}",
        ]
        # The same mutual-TLS listener on TCP and on a Unix socket (a hub may use a local bridge).
        conf += [
            f"listener {self.port} {self.host}",
            *listener,
            f"listener 0 {self.socket_path}",
            *listener,
        ]
        self._log_file.touch()
        os.chmod(self._log_file, 0o666)
        self.conf_file = self._write("mosquitto.conf", "\n".join(conf) + "\n")

    def issue(self, cn: str, ca: _Ca | None = None) -> TlsFiles:
        """A client certificate for `cn`, signed by this broker's CA."""
        cert, key = (ca or self._ca).issue(cn)
        # the client's key as a hub keeps its own: 0600 (hub/config.py refuses others' access)
        return TlsFiles(self.ca_file, self._write(f"{cn}.pem", cert),
                        self._write(f"{cn}.key", key, 0o600))

    def tls(self, cn: str) -> TlsFiles:
        if cn not in self._files:
            self._files[cn] = self.issue(cn)
        return self._files[cn]

    # ----- process -----
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 5.0) -> None:
        if self.running:
            return
        self._proc = subprocess.Popen(
            [mosquitto_path(), "-c", self.conf_file],
            stdout=subprocess.DEVNULL,
            stderr=None if self.verbose else subprocess.DEVNULL,
            start_new_session=self.new_session,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket_path)
                return
            except OSError:
                time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log()}")

    def _end(self, sig: int, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)  # in case it was paused
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def stop(self) -> None:
        """Graceful: SIGTERM, mosquitto saves retained messages and sessions to its database."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Crash: SIGKILL, only what the last autosave (1 s) wrote survives."""
        self._end(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: connections stay open, the broker answers nothing (no PUBACK) until resume()."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        try:
            return self._log_file.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        try:
            self.kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _has_user(name: str) -> bool:
    try:
        import pwd

        pwd.getpwnam(name)
        return True
    except (KeyError, ImportError):
        return False
