"""An in-process stand-in for ingest and the query API (grpc.aio), scripted
by the unit tests: it answers events in order, and can fail a stream
midway, refuse every call with a status, answer an event UNAVAILABLE, hold
its answers, and serve aggregates in pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from tributary.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc


class FakeIngest(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self) -> None:
        # Every event received, over all streams, in order.
        self.received: list[event_pb2.Event] = []
        # Idempotency keys of the events acknowledged.
        self.acked: list[str] = []
        self.streams = 0
        self.metadata: list[dict[str, str]] = []
        # Fail the stream (UNAVAILABLE) once this many events were acknowledged.
        self.fail_after: int | None = None
        # Refuse every call with this status.
        self.status: grpc.StatusCode | None = None
        # Answer these keys EVENT_ERROR_CODE_UNAVAILABLE the first time.
        self.unavailable_once: set[str] = set()
        # Send the response headers before the first answer.
        self.headers_first = True
        # Answer only while set.
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def SubmitEvents(
        self,
        request_iterator: AsyncIterator[ingest_pb2.SubmitEventsRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[ingest_pb2.SubmitEventsResponse]:
        self.streams += 1
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        if self.status is not None:
            await context.abort(self.status, "refused by the fake")
        # As tonic does: the response headers go out at once, before any
        # message (the SDK writes once it has them, or after a second).
        if self.headers_first:
            await context.send_initial_metadata(())
        queue: asyncio.Queue[ingest_pb2.SubmitEventsRequest | None] = asyncio.Queue()

        async def pump() -> None:
            async for request in request_iterator:
                self.received.append(request.event)
                await queue.put(request)
            await queue.put(None)

        reader = asyncio.get_running_loop().create_task(pump())
        try:
            index = 0
            while True:
                request = await queue.get()
                if request is None:
                    return
                await self.flowing.wait()
                if self.fail_after is not None and len(self.acked) >= self.fail_after:
                    self.fail_after = None
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "injected failure")
                event = request.event
                result = ingest_pb2.EventResult(index=index)
                if event.idempotency_key in self.unavailable_once:
                    self.unavailable_once.discard(event.idempotency_key)
                    result.error.code = ingest_pb2.EVENT_ERROR_CODE_UNAVAILABLE
                    result.error.message = "the broker did not answer in time"
                elif event.HasField("ad_click") and event.ad_click.ip_address == "bad":
                    result.error.code = ingest_pb2.EVENT_ERROR_CODE_INVALID_ARGUMENT
                    result.error.field = "ad_click.ip_address"
                    result.error.message = "`bad` is not an IPv4 or IPv6 address"
                else:
                    self.acked.append(event.idempotency_key)
                    result.ack.topic = f"tributary.events.{event.event_type}"
                    result.ack.offset = len(self.acked) - 1
                    result.ack.schema_id = 1
                yield ingest_pb2.SubmitEventsResponse(result=result)
                index += 1
        finally:
            reader.cancel()


class FakeQuery(query_pb2_grpc.QueryServiceServicer):
    """Serves `rows` aggregates of ad_click, `page_size` (default 2) a page."""

    def __init__(self, rows: int = 5) -> None:
        self.rows = rows
        self.requests: list[query_pb2.GetAggregatesRequest] = []

    async def GetAggregates(
        self, request: query_pb2.GetAggregatesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> query_pb2.GetAggregatesResponse:
        self.requests.append(request)
        if request.page_size < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size: must be between 1 and 10000")
        size = request.page_size or 2
        start = int(request.page_token or 0)
        page = query_pb2.GetAggregatesResponse()
        for i in range(start, min(start + size, self.rows)):
            page.aggregates.add(event_type=request.event_type, key=f"adv-{i}", count=i)
        if start + size < self.rows:
            page.next_page_token = str(start + size)
        return page


class FakeServer:
    """FakeIngest and FakeQuery on a loopback port, restartable on it."""

    def __init__(self) -> None:
        self.ingest = FakeIngest()
        self.query = FakeQuery()
        self.port = 0
        self._server: grpc.aio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        server = grpc.aio.server()
        ingest_pb2_grpc.add_IngestServiceServicer_to_server(self.ingest, server)
        query_pb2_grpc.add_QueryServiceServicer_to_server(self.query, server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None
