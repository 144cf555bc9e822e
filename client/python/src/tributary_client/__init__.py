"""Tributary's Python SDK, on ``grpc.aio``.

- :func:`connect` / :class:`Client`: URL, API key, private CA.
- :func:`ad_click`, :func:`price_tick`, :func:`generic`: events.
- :meth:`Client.sender` → :class:`Sender`: one ``SubmitEvents`` stream with a
  window of unanswered events, answers in order, reconnect and resend with
  the original idempotency keys.
- :meth:`Client.aggregates`, :meth:`Client.price_accuracy`: the query API.
- :mod:`tributary_client.sync`: a blocking wrapper for scripts.

The generated messages and stubs are in :mod:`tributary.v1`.

Example::

    import asyncio
    import tributary_client as trib

    async def main() -> None:
        async with await trib.connect("http://127.0.0.1:50051") as client:
            async with client.sender() as sender:
                answer = await sender.send(trib.price_tick("ETH-USD", "coinbase", 3012.5))
            print((await answer).offset)

    asyncio.run(main())
"""

from tributary.v1.event_pb2 import AdClick, Event, PriceTick
from tributary.v1.ingest_pb2 import EventAck, EventError
from tributary.v1.query_pb2 import Aggregate, PriceAccuracy

from ._client import DEFAULT_URL, Client, Order, connect
from ._errors import (
    EventRejected,
    GaveUp,
    InvalidArgument,
    SenderClosed,
    StatusError,
    TributaryError,
    Unavailable,
)
from ._events import EventTime, ad_click, generic, price_tick, timestamp
from ._sender import Sender

__all__ = [
    "DEFAULT_URL",
    "AdClick",
    "Aggregate",
    "Client",
    "Event",
    "EventAck",
    "EventError",
    "EventRejected",
    "EventTime",
    "GaveUp",
    "InvalidArgument",
    "Order",
    "PriceAccuracy",
    "PriceTick",
    "Sender",
    "SenderClosed",
    "StatusError",
    "TributaryError",
    "Unavailable",
    "ad_click",
    "connect",
    "generic",
    "price_tick",
    "timestamp",
]

__version__ = "0.1.0"
