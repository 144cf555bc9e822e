"""A blocking wrapper for scripts: :class:`Client` runs the asyncio SDK on a
private event loop in a background thread.

    from tributary_client import price_tick
    from tributary_client.sync import Client

    with Client("http://127.0.0.1:50051") as client:
        results = client.send_all([price_tick("ETH-USD", "coinbase", 3012.5)])
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import threading
from collections.abc import Coroutine, Iterable
from types import TracebackType
from typing import Any, TypeVar, Union

from tributary.v1 import event_pb2, ingest_pb2, query_pb2

from . import _client
from ._errors import EventRejected
from ._events import EventTime

__all__ = ["Client", "SendResult"]

T = TypeVar("T")

#: What became of one event: its ack, or why it was refused.
SendResult = Union[ingest_pb2.EventAck, EventRejected]


class Client:
    """A blocking client: connects at once (raising
    :class:`~tributary_client.Unavailable` naming the address when nothing
    answers within ``connect_timeout`` seconds); see
    :class:`tributary_client.Client` for the other parameters. Close it, or
    use ``with``."""

    def __init__(
        self,
        url: str = _client.DEFAULT_URL,
        *,
        api_key: str | None = None,
        ca: _client.CA | None = None,
        server_name: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tributary-client", daemon=True)
        self._thread.start()
        try:
            self._client = self._run(
                _client.connect(url, api_key=api_key, ca=ca, server_name=server_name, timeout=connect_timeout)
            )
        except BaseException:
            self._stop()
            raise

    @property
    def url(self) -> str:
        """The endpoint URL."""
        return self._client.url

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("the client is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def send_all(
        self,
        events: Iterable[event_pb2.Event],
        *,
        window: int = 1024,
        give_up_after: float = 60.0,
    ) -> list[SendResult]:
        """Streams ``events`` through one sender and returns what became of
        each, in order: its ``EventAck``, or the :class:`EventRejected`
        explaining the refusal. Raises when the sender failed (e.g.
        :class:`~tributary_client.GaveUp`, or a
        :class:`~tributary_client.StatusError` such as UNAUTHENTICATED)."""
        return self._run(self._send_all(list(events), window, give_up_after))

    async def _send_all(self, events: list[event_pb2.Event], window: int, give_up_after: float) -> list[SendResult]:
        sender = self._client.sender(window=window, give_up_after=give_up_after)
        async with sender:
            answers = [await sender.send(event) for event in events]
        results: list[SendResult] = []
        for answer in answers:
            error = answer.exception()
            if error is None:
                results.append(answer.result())
            elif isinstance(error, EventRejected):
                results.append(error)
            else:
                raise error
        return results

    def aggregates(
        self,
        event_type: str,
        start: EventTime,
        end: EventTime,
        *,
        keys: Iterable[str] = (),
        granularity: _dt.timedelta | None = None,
        order: _client.Order = "asc",
        page_size: int | None = None,
    ) -> list[query_pb2.Aggregate]:
        """Every page of ``GetAggregates``; see
        :meth:`tributary_client.Client.aggregates`."""

        async def collect() -> list[query_pb2.Aggregate]:
            return [
                aggregate
                async for aggregate in self._client.aggregates(
                    event_type, start, end, keys=keys, granularity=granularity, order=order, page_size=page_size
                )
            ]

        return self._run(collect())

    def price_accuracy(
        self,
        start: EventTime,
        end: EventTime,
        *,
        pairs: Iterable[str] = (),
        granularity: _dt.timedelta | None = None,
    ) -> list[query_pb2.PriceAccuracy]:
        """See :meth:`tributary_client.Client.price_accuracy`."""

        async def fetch() -> list[query_pb2.PriceAccuracy]:
            return list(await self._client.price_accuracy(start, end, pairs=pairs, granularity=granularity))

        return self._run(fetch())

    def close(self) -> None:
        """Closes the connection and stops the background loop."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.close())
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
