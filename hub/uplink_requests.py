"""Platform requests over the uplink: messages on the hub's request topics in, responses out.

The uplink subscribes to contract.request_filter at every connect. A retained message there is
ignored; one that does not parse is answered with an error response. Responses go to
.../response/<kind>, echoing the request's transaction id.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hub import contract

if TYPE_CHECKING:
    from hub.uplink_config import UplinkConfig

log = logging.getLogger("carebeacon.uplink")


def request_of(message: Any, c: UplinkConfig) -> contract.Request | None:
    """The request in a message on the request filter, or None: a retained message (logged).
    A malformed request raises contract.ContractError (logged): answer it with that error."""
    if message.retain:  # replayed at subscription: requests must never be retained
        log.warning("ignoring a retained request on %s", message.topic)
        return None
    try:
        return contract.parse_request(
            message.topic, message.payload, county=c.county, hub_id=c.hub_id
        )
    except contract.ContractError as err:
        log.warning("bad request on %s: %s", message.topic, err)
        raise


def response_to(
    c: UplinkConfig,
    request: contract.Request | None,
    result: int,
    *,
    text: str | None,
    data: dict | None,
    error: contract.ContractError | None,
) -> tuple[str, bytes]:
    """(topic, payload) answering `request`, or with `error` a request that did not parse."""
    if error is not None:
        msg = contract.error_response(c.hub_id, c.county, error)
        kind = error.kind
    else:
        assert request is not None
        kind = request.kind
        msg = contract.response(
            hub=c.hub_id,
            county=c.county,
            kind=kind,
            transaction=request.transaction,
            result=result,
            text=text,
            data=data,
        )
    return contract.response_topic(c.county, c.hub_id, kind), contract.encode(msg)
