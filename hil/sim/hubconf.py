"""The hub's configuration for a simulated home, the rigs, the e2e tests and the bench:
hub.toml + secrets.toml (0600).

    specs = [DeviceSpec(0xA1B2, key, "button", "bedroom", "by the bed"), ...]
    path = write_hub_config(workdir, "hub-demo", "demo-county", specs,
                            url="mqtts://127.0.0.1:8883", tls=broker.tls("hub-demo"),
                            radio={"scanning": "active"}, inactivity={"enabled": False})

The same files `python -m hub -c hub.toml run` reads in production (hub/config.py checks
them), so the simulated home runs the hub exactly as installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DeviceSpec:
    id: int
    key: bytes
    kind: str = "button"
    room: str = ""
    location: str = ""
    heartbeat_min: int = 60
    entrance: bool = False

    @property
    def hex(self) -> str:
        return f"{self.id:08x}"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_hub_config(workdir: Path | str, hub_id: str, county: str, devices: list[DeviceSpec], *,
                     url: str, tls=None, household: str = "hh-sim",
                     inactivity: dict[str, int] | None = None,
                     radio: dict[str, object] | None = None,
                     keepalive_s: int = 30, session_expiry_s: int = 3600) -> Path:
    """Write hub.toml and secrets.toml into workdir; returns hub.toml's path.
    `tls`: hil.sim.broker.TlsFiles for an mqtts url."""
    d = Path(workdir)
    d.mkdir(parents=True, exist_ok=True)
    lines = ["[hub]", f"id = {_q(hub_id)}", f"county = {_q(county)}",
             f"household = {_q(household)}", 'data_dir = "data"',
             "[platform]", f"url = {_q(url)}",
             f"keepalive_s = {keepalive_s}", f"session_expiry_s = {session_expiry_s}"]
    if tls is not None:
        lines += [f"ca_file = {_q(tls.ca)}", f"cert_file = {_q(tls.cert)}",
                  f"key_file = {_q(tls.key)}"]
    lines.append("[radio]")
    for k, v in (radio or {}).items():
        lines.append(f"{k} = {_q(v) if isinstance(v, str) else v}")
    lines.append("[inactivity]")
    for k, v in (inactivity or {}).items():
        lines.append(f"{k} = {str(v).lower() if isinstance(v, bool) else v}")
    for s in devices:
        lines += ["[[devices]]", f"id = {_q(s.hex)}", f"kind = {_q(s.kind)}",
                  f"room = {_q(s.room)}", f"location = {_q(s.location)}",
                  f"heartbeat_min = {s.heartbeat_min}",
                  f"entrance = {str(s.entrance).lower()}"]
    path = d / "hub.toml"
    path.write_text("\n".join(lines) + "\n")
    fd = os.open(d / "secrets.toml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("[keys]\n" + "".join(f'"{s.hex}" = "{s.key.hex()}"\n' for s in devices))
    os.chmod(d / "secrets.toml", 0o600)
    return path
