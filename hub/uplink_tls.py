"""The uplink's TLS context: the county CA, the hub's certificate and key, the broker's name.

A file that cannot be used must not stop the hub (the radio and the store keep alarms through any
uplink outage), so the uplink builds a fresh context before every connection attempt
(`FreshContext`): a bad file is a failed attempt, reported like any outage and retried with the
usual backoff, and a fixed file is used at the next attempt without a restart. `hub check-config`
builds the same context (`check_platform_tls`) and says what is wrong before the hub runs.

Python's ssl errors name neither the file nor, for a bad PEM, which of certificate and key is at
fault ("PEM lib"), and an OSError from it has no path: so each file is read and looked at first,
and every error here names the config key, the file and the reason (`TlsFileError`).

TLS checks the broker's certificate chain (the county CA) and its name, on both transports: the
name is `UplinkConfig.host`, which on the Unix-socket transport is only that (`BrokerNameContext`).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.config import ConfigError

if TYPE_CHECKING:
    from hub.config import Config
    from hub.uplink_config import UplinkConfig

_CERT = b"-----BEGIN CERTIFICATE-----"
_KEY = b"PRIVATE KEY-----"  # PKCS#8 "BEGIN PRIVATE KEY", "BEGIN EC/RSA PRIVATE KEY"


class TlsFileError(ConfigError):
    """A TLS file of `[platform]` the uplink cannot use: `key` (ca_file, cert_file, key_file),
    its `path` and `why`."""

    def __init__(self, key: str, path: str | None, why: str) -> None:
        self.key, self.path, self.why = key, path, why
        super().__init__(f"platform.{key} {path}: {why}")


class BrokerNameContext(ssl.SSLContext):
    """Checks the broker's certificate against `broker_name`, whatever paho asks for.

    paho wraps the socket with `server_hostname` = the host it connected to, which on the
    Unix-socket transport is the socket's path: no certificate names that, and turning the check
    off (`tls_insecure_set`) would let any server certificate of the county CA (another
    broker's; any without an extended key usage) pose as the broker. So the name is set here;
    TLS checks it in the handshake."""

    broker_name = ""

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["server_hostname"] = self.broker_name
        return super().wrap_socket(sock, *args, **kwargs)


def tls_context(c: UplinkConfig) -> ssl.SSLContext:
    """The county CA, the hub's certificate and key; the broker's name (`c.host`) checked.
    TlsFileError: a file that cannot be read or used, and why."""
    ctx = BrokerNameContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname on
    ctx.broker_name = c.host
    ca = _read("ca_file", c.ca_file)
    if _CERT not in ca:
        raise TlsFileError("ca_file", c.ca_file, _not_pem(ca, "certificate"))
    try:
        ctx.load_verify_locations(cafile=c.ca_file)
    except (ssl.SSLError, OSError) as e:
        raise TlsFileError("ca_file", c.ca_file, f"not a usable CA certificate: {_why(e)}") from e
    if c.cert_file:
        _load_chain(ctx, c.cert_file, c.key_file)
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert_file: str, key_file: str | None) -> None:
    cert = _read("cert_file", cert_file)
    if _CERT not in cert:
        raise TlsFileError("cert_file", cert_file, _not_pem(cert, "certificate"))
    if key_file:
        key = _read("key_file", key_file)
        if _KEY not in key:
            raise TlsFileError("key_file", key_file, _not_pem(key, "private key"))
        if b"ENCRYPTED" in key:  # OpenSSL would ask for a passphrase on the terminal
            why = "encrypted: the hub needs a key without a passphrase (readable by it only)"
            raise TlsFileError("key_file", key_file, why)
    try:
        ctx.load_cert_chain(cert_file, key_file, password=_no_password)
    except (ssl.SSLError, OSError) as e:
        if getattr(e, "reason", None) == "KEY_VALUES_MISMATCH":
            why = f"does not match platform.cert_file {cert_file} (another certificate's key?)"
            raise TlsFileError("key_file", key_file, why) from e
        # "PEM lib" names neither file: the certificate alone parses, or it is the one at fault
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert_file)
        except (ssl.SSLError, OSError):
            why = f"not a valid certificate: {_why(e)}"
            raise TlsFileError("cert_file", cert_file, why) from e
        why = f"not a valid private key: {_why(e)}"
        raise TlsFileError("key_file", key_file or cert_file, why) from e


def _read(key: str, path: str | None) -> bytes:
    if not path:
        raise TlsFileError(key, path, "not set")
    try:
        data = Path(path).read_bytes()
    except OSError as e:  # PermissionError, IsADirectoryError, ELOOP, ...: strerror says which
        raise TlsFileError(key, path, f"cannot be read: {e.strerror or e}") from e
    if not data.strip():
        raise TlsFileError(key, path, "empty")
    return data


def _not_pem(data: bytes, want: str) -> str:
    if want == "certificate" and _KEY in data:
        return "holds a private key, not a certificate (files swapped?)"
    if want == "private key" and _CERT in data:
        return "holds a certificate, not a private key (files swapped?)"
    return f"not a PEM {want} (no '-----BEGIN ...' line)"


def _why(e: BaseException) -> str:
    return (getattr(e, "strerror", None) or str(e)).split(" (_ssl.c")[0]


def _no_password() -> str:
    raise ssl.SSLError("the key is encrypted")  # never prompt: the hub runs unattended


class FreshContext:
    """What the uplink gives paho as its SSL context: `build()` (the attempt thread, before
    each attempt, hub/uplink_loop.py) makes a new context from the files, `wrap_socket` uses it.
    paho reads only `check_hostname` (True: the context checks the broker's name itself)."""

    check_hostname = True

    def __init__(self, config: UplinkConfig) -> None:
        self.config = config
        self._ctx: ssl.SSLContext | None = None

    def build(self) -> None:
        self._ctx = None
        self._ctx = tls_context(self.config)  # TlsFileError: this attempt fails

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        ctx = self._ctx or tls_context(self.config)
        return ctx.wrap_socket(sock, *args, **kwargs)


def check_platform_tls(cfg: Config) -> None:
    """For `hub check-config`: build the uplink's TLS context as `hub run` will; ConfigError
    naming hub.toml, the key, the file and the reason."""
    from hub.daemon import uplink_config  # late: the daemon imports the uplink, which imports this

    c = uplink_config(cfg)
    if c.ca_file:
        try:
            tls_context(c)
        except TlsFileError as e:
            raise ConfigError(f"{cfg.path}: {e}") from None
