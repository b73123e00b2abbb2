"""The test broker: hil/sim/broker.py (moved there so the demo and the rig share it)."""

from hil.sim.broker import (  # noqa: F401  (re-exported for the tests)
    PREFIX,
    Broker,
    TlsFiles,
    acl_text,
    free_port,
    mosquitto_path,
)
