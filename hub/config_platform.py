"""hub.toml's `[platform]`: the broker's URL, the TLS files and their modes (hub/config.py).

Two problems are the connection's, not the hub's: TLS files under a plain URL (mqtt://,
unix://: they would be left out) and plain MQTT to another machine (alarms in clear). Every
loader refuses them (check-config, device add, the installer) except `hub run` (load's
strict=False): there they *block* the uplink (`Platform.blocked`): no connection at all, the
reason in the status, and the hub still stores and acknowledges alarms. A hub that does not
run stores none (under systemd it restart-loops), one that may not send keeps them all.
"""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from hub.config import _Reader

HUB_USER_ENV = "CAREBEACON_HUB_USER"  # the unit's User= when not carebeacon (root's commands)
# Names for this machine without asking DNS (load must not wait on it): 'localhost' and the
# reserved .localhost domain (RFC 6761), and 'localhost.localdomain' (the hosts files of many
# distributions). Any other name is refused even if it resolves to 127.0.0.1 today.
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


@dataclass(frozen=True)
class Platform:
    host: str
    port: int
    unix_socket: str | None
    tls: bool
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    keepalive_s: int
    session_expiry_s: int
    # what is wrong with the TLS files, when loaded for `hub run` (load's strict=False): the
    # hub runs, stores and acknowledges alarms, and the uplink retries them (hub/uplink_tls.py)
    file_problems: tuple[str, ...] = ()
    # why the hub must not connect at all (strict=False only; see the module's text)
    blocked: str | None = None


def _hub_group() -> int | None:
    try:
        return pwd.getpwnam(os.environ.get(HUB_USER_ENV) or "carebeacon").pw_gid
    except KeyError:
        return None


def _group_name(gid: int | None) -> str:
    try:
        return "carebeacon" if gid is None else grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _key_file_problem(p: Path) -> str | None:
    """Why the hub's TLS private key's mode lets others have it (like the secrets file's), or
    None: no access for others, and only the hub's group may read it (0640 root:carebeacon)."""
    st, hub = p.stat(), _hub_group()
    mode = stat.S_IMODE(st.st_mode)
    # the group may read: root's, this process's (the hub runs as its user), the hub user's
    # (device add and the installer run as root and load the config too)
    group_ok = not mode & stat.S_IRGRP or st.st_gid in {0, os.getegid(), hub}
    if not mode & (stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP) and group_ok:
        return None
    group = "" if group_ok else f" and group {_group_name(st.st_gid)}"
    return (f"{p}: mode {mode:04o}{group}: other users may read or replace the hub's TLS private"
            f" key; run: chmod 600 {p} (if the hub's user owns it), or: chown root:"
            f"{_group_name(hub)} {p} && chmod 640 {p}")


def loopback(host: str) -> bool:
    """`host` is this machine: a loopback address (also IPv4-mapped) or a name in
    _LOOPBACK_NAMES or under .localhost; decided without DNS."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.lower().rstrip(".")
        return name in _LOOPBACK_NAMES or name.endswith(".localhost")
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _tls_file_problem(p: Path, key: bool) -> str | None:
    try:
        if not p.is_file():
            return f"{p}: file not found"
    except OSError as e:  # a directory on the way it may not enter, a symlink loop
        return f"{p}: cannot be reached ({e.strerror})"
    return _key_file_problem(p) if key else None


def platform(r: _Reader, base: Path, check_mode: bool = True, strict: bool = True) -> Platform:
    r.unknown({"url", "ca_file", "cert_file", "key_file", "keepalive_s", "session_expiry_s"})
    url = r.get("url", str)
    try:
        u = urlparse(url)
        u.port  # noqa: B018  (parsed lazily: a bad port or IPv6 address raises only here)
    except ValueError as e:
        raise r.fail("url", f"{url!r}: {e}") from None
    if u.scheme not in ("mqtts", "mqtt", "unix"):
        raise r.fail("url", f"{url!r}: scheme must be mqtts://, mqtt:// (tests, to this machine "
                            "only) or unix://")
    tls = u.scheme == "mqtts"
    files = {}
    problems: list[str] = []
    blocked: list[str] = []  # strict: raised at once; else the first blocks the uplink
    for k in ("ca_file", "cert_file", "key_file"):
        v = r.get(k, str, None)
        if v is not None and not tls:  # mqtt:// for mqtts:// would drop them: alarms in clear
            why = (f"{v!r} is set, but url {url!r} is not TLS and would ignore it (alarms "
                   "unencrypted, to any broker): use mqtts:// or remove ca_file, cert_file and "
                   "key_file")
            if strict:
                raise r.fail(k, why)
            blocked.append(str(r.fail(k, why)))
            v = None  # unused: nothing connects
        elif v is not None:
            p = (base / v) if not os.path.isabs(v) else Path(v)
            why = _tls_file_problem(p, k == "key_file" and check_mode)
            if why and strict:
                raise r.fail(k, why)
            if why:
                problems.append(str(r.fail(k, why)))
            v = str(p)
        elif tls:
            raise r.fail(k, "missing: mqtts needs the CA, the hub's certificate and its key")
        files[k] = v
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError:
        raise r.fail("url", f"{url!r}: bad port") from None
    if u.scheme != "unix" and not u.hostname:
        raise r.fail("url", f"{url!r}: no host")
    # Plain MQTT stays on this machine (the tests', the simulator's broker): elsewhere a one-letter
    # typo for mqtts:// would hand every alarm to whoever answers on the path.
    if u.scheme == "mqtt" and not loopback(u.hostname):
        why = r.fail("url", f"{url!r}: plain MQTT (no TLS) only to this machine (localhost, "
                            "127.0.0.1, ::1, *.localhost); the platform needs mqtts:// and the"
                            " TLS files")
        if strict:
            raise why
        blocked.append(str(why))
    host = u.hostname or ""
    if u.scheme == "mqtt" and loopback(host) and not _is_ip(host):
        # A loopback name is connected to as 127.0.0.1 (RFC 6761: such names are loopback):
        # without systemd-resolved, glibc may ask DNS for "broker.localhost", and a hostile
        # resolver's answer would take plain, unencrypted alarms off this machine.
        host = "127.0.0.1"
    return Platform(
        host=host, port=port,
        unix_socket=u.path if u.scheme == "unix" else None, tls=tls,
        keepalive_s=r.get("keepalive_s", int, 60, lo=10, hi=3600),
        session_expiry_s=r.get("session_expiry_s", int, 7 * 86400, lo=60, hi=2**32 - 1),
        file_problems=tuple(problems), blocked=blocked[0] if blocked else None,
        **files,
    )
