"""An in-process stand-in for ingest and the query API (grpc.aio), scripted
by the unit tests: it answers events in order, as ingest does (a one-event
message with a `result`, the events of a many-event message compactly, in
`acked` runs and `errors`, as many ready results per response as there
are), and can fail a stream midway, refuse every call with a status, answer
an event UNAVAILABLE, hold its answers, spread results over small responses,
answer every event with a `result`, and serve aggregates in pages."""

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
        # The idempotency keys each stream received, in order.
        self.stream_keys: list[list[str]] = []
        # How many events each message carried, over all streams, in order.
        self.messages: list[int] = []
        # The responses sent, over all streams, in order.
        self.responses: list[ingest_pb2.SubmitEventsResponse] = []
        # The most results one compact response carries.
        self.results_per_response = 4096
        # Answer every event with a response of its own (`result`), as
        # ingest answers one-event messages.
        self.one_result_per_response = False
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
        # Each event received and whether its message carried many.
        queue: asyncio.Queue[tuple[event_pb2.Event, bool] | None] = asyncio.Queue()
        keys: list[str] = []
        self.stream_keys.append(keys)

        async def pump() -> None:
            async for request in request_iterator:
                many = len(request.events) > 0
                events = ([request.event] if request.HasField("event") else []) + list(request.events)
                self.messages.append(len(events))
                for event in events:
                    self.received.append(event)
                    keys.append(event.idempotency_key)
                    await queue.put((event, many))
            await queue.put(None)

        reader = asyncio.get_running_loop().create_task(pump())
        try:
            index = 0
            compact = ingest_pb2.SubmitEventsResponse()
            in_compact = 0
            ended = False
            while not ended:
                # What is ready now is answered in as few responses as possible.
                ready = [await queue.get()]
                while not queue.empty():
                    ready.append(queue.get_nowait())
                responses: list[ingest_pb2.SubmitEventsResponse] = []
                for item in ready:
                    if item is None:
                        ended = True
                        break
                    event, many = item
                    await self.flowing.wait()
                    if self.fail_after is not None and len(self.acked) >= self.fail_after:
                        self.fail_after = None
                        # Whatever was answered goes out before the failure.
                        for response in responses + ([compact] if in_compact else []):
                            self.responses.append(response)
                            yield response
                        await context.abort(grpc.StatusCode.UNAVAILABLE, "injected failure")
                    result = self._answer(index, event)
                    index += 1
                    if many and not self.one_result_per_response:
                        _push(compact, result)
                        in_compact += 1
                        if in_compact >= self.results_per_response:
                            responses.append(compact)
                            compact, in_compact = ingest_pb2.SubmitEventsResponse(), 0
                    else:
                        if in_compact:
                            responses.append(compact)
                            compact, in_compact = ingest_pb2.SubmitEventsResponse(), 0
                        responses.append(ingest_pb2.SubmitEventsResponse(result=result))
                if in_compact:
                    responses.append(compact)
                    compact, in_compact = ingest_pb2.SubmitEventsResponse(), 0
                for response in responses:
                    self.responses.append(response)
                    yield response
        finally:
            reader.cancel()

    def _answer(self, index: int, event: event_pb2.Event) -> ingest_pb2.EventResult:
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
        return result


def _push(response: ingest_pb2.SubmitEventsResponse, result: ingest_pb2.EventResult) -> None:
    """Adds the result of the event after the last one `response` answers:
    an ack to the last run when it continues it (same topic and schema),
    else to a new run; an error to `errors`."""
    if result.HasField("ack"):
        ack = result.ack
        run = response.acked[-1] if response.acked else None
        if (
            run is None
            or run.first_index + len(run.offsets) != result.index
            or run.topic != ack.topic
            or run.schema_id != ack.schema_id
        ):
            run = response.acked.add(first_index=result.index, topic=ack.topic, schema_id=ack.schema_id)
        run.partitions.append(ack.partition)
        run.offsets.append(ack.offset)
    else:
        response.errors.append(result)


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
