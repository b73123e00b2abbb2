"""Which Bluetooth adapter the hub's radio uses (hub/radio.py), from what BlueZ lists.

The adapter used before is followed by its MAC under whatever hciN name it comes back as
(a dongle re-plugged, a driver reset); else the configured name; else the only adapter
present. Pure: the radio makes the D-Bus calls and logs.
"""

from __future__ import annotations

from hub.radio_bluez import AdapterInfo


def choose_adapter(adapters: dict[str, AdapterInfo], configured: str, used_mac: str | None,
                   used_name: str | None) -> tuple[AdapterInfo | None, str]:
    """(the adapter, a warning to log or "") or (None, the no_adapter detail)."""
    by_mac = [a for a in adapters.values() if used_mac and a.address == used_mac]
    if by_mac:
        return by_mac[0], ""
    if configured in adapters:
        return adapters[configured], ""
    if len(adapters) == 1:
        (only,) = adapters.values()
        return only, (f"adapter {configured} not found; using the only adapter, {only.name} "
                      f"({only.address})")
    wanted = used_name or configured
    if used_mac:
        wanted += f" ({used_mac})"
    present = ", ".join(sorted(adapters)) or "none"
    return None, f"adapter {wanted} not found; adapters present: {present}"
