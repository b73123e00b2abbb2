"""The hub <-> county platform MQTT contract: topics, message builders, request parsing.

Human-readable: docs/mqtt.md. Machine-readable: docs/mqtt/asyncapi.yaml and the JSON Schemas in
docs/mqtt/schemas/. Every builder returns a plain dict (the tests validate each against its
schema); `encode()` makes the wire bytes (compact UTF-8 JSON).

Status codes: we do not have the text of CLC/TS 50134-9 (SCAIP), so `scaip.status_code` is
carebeacon's OWN stable number (`scaip.code_system` = "carebeacon"), never a SCAIP number;
`status_text` uses SCAIP's status names where our notes list them, and a SCAIP gateway maps by
that text. The response result codes 0..7 are SCAIP's (`Result`).
"""

# One contract, two files: hub/contract_events.py (topics, refs, events, state, availability)
# and hub/contract_requests.py (platform requests and responses). Callers import this module.
from hub.contract_events import *  # noqa: F403
from hub.contract_events import _HOUSEHOLD, _ID, _REF  # noqa: F401 (used by the tests)
from hub.contract_requests import (
    FLOOR_DEFAULT_MIN as FLOOR_DEFAULT_MIN,
    INACTIVITY_BOUNDS as INACTIVITY_BOUNDS,
    INACTIVITY_SETTINGS as INACTIVITY_SETTINGS,
    SETTINGS as SETTINGS,
    Request as Request,
    activity_conflict as activity_conflict,
    device_entry as device_entry,
    error_response as error_response,
    inactivity_conflict as inactivity_conflict,
    parse_request as parse_request,
    response as response,
)
