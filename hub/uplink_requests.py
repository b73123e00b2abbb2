"""Platform requests over the uplink: messages on the hub's request topics in, responses out.

The uplink subscribes to contract.request_filter at every connect. A retained message there is
ignored; one that does not parse is answered with an error response. Responses go to
.../response/<kind>, echoing the request's transaction id.

A response made while the hub is not connected (the connection fell between request and
answer) is held here and sent once a CONNACK accepts the hub, not handed to paho: during a
connection attempt paho holds the new socket a moment before its CONNECT is queued, and a
PUBLISH queued then was not written at all until the keepalive gave up on the connection
(tests/hub/test_uplink_respond_while_connecting.py). At most HELD_MAX are held, the oldest
dropped first: the platform re-asks a request that got no response (docs/mqtt.md).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from hub import contract

if TYPE_CHECKING:
    from hub.uplink_config import UplinkConfig

log = logging.getLogger("carebeacon.uplink")

HELD_MAX = 64  # responses held through an outage: requests come only while connected, so few


class HeldResponses:
    """(topic, payload) of responses made while not connected; the loop's thread only."""

    def __init__(self) -> None:
        self._items: deque[tuple[str, bytes]] = deque()

    def hold(self, topic: str, payload: bytes) -> None:
        if len(self._items) >= HELD_MAX:
            dropped, _ = self._items.popleft()
            log.warning("not connected: dropping the oldest held response (%s), the platform"
                        " re-asks its request", dropped)
        self._items.append((topic, payload))

    def take(self) -> list[tuple[str, bytes]]:
        """Every held response, oldest first; none held afterwards."""
        items = list(self._items)
        self._items.clear()
        return items


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
