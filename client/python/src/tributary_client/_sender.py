"""The streaming sender: one ``SubmitEvents`` stream carrying events as fast
as ingest takes them, with every event's answer delivered to its caller.

At most ``window`` events are unanswered at a time; :meth:`Sender.send`
waits for room, which is the sender's backpressure. Each event carries an
idempotency key (a random one when it has none). When the stream fails —
ingest restarted or killed, the connection dropped, an event answered
UNAVAILABLE — the sender reconnects with exponential backoff and sends every
unanswered event again, in order, with its original idempotency key:
nothing acknowledged is lost and the processor counts a resent event once.
Answers arrive in the order events were sent. The same design as the Rust
SDK's sender (client/src/sender.rs).

Events go many to a message (``SubmitEventsRequest.events``): whatever is
queued when the stream is ready to write the next message, up to 64 KiB and
1024 events (an event larger than that goes alone), so a sender that keeps
up sends each event at once and a busy one sends far fewer, larger
messages. Ingest answers them compactly (``SubmitEventsResponse.acked`` runs
and ``errors``, or ``result`` for a one-event message), and
:func:`_results` reads every response back into one result per event.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
import uuid
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Sequence, Tuple, Union

import grpc

from tributary.v1 import event_pb2, ingest_pb2

from ._backoff import Backoff
from ._errors import EventRejected, GaveUp, SenderClosed, StatusError, TributaryError, Unavailable

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Sender"]

log = logging.getLogger("tributary_client")

# Statuses that say the call itself is wrong: retrying cannot help.
_FATAL = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
    }
)


# How long a stream waits for ingest's response headers before writing anyway.
_HEADERS_WAIT = 1.0

# Most events the sender puts in one message.
_MAX_EVENTS_PER_MESSAGE = 1024
# The size a message of many events is kept under (an event larger than that
# goes alone).
_MAX_MESSAGE_BYTES = 64 * 1024


@dataclass
class _InFlight:
    """An event sent and not yet answered."""

    event: event_pb2.Event
    answer: asyncio.Future[ingest_pb2.EventAck]


# One event's result read from a response: its index in the stream and its
# outcome (an ack, an error, or None when the result carried neither).
_Result = Tuple[int, Union[ingest_pb2.EventAck, ingest_pb2.EventError, None]]


def _varint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _messages(events: Sequence[event_pb2.Event]) -> list[ingest_pb2.SubmitEventsRequest]:
    """``events`` as messages of many events, in order, each at most
    ``_MAX_EVENTS_PER_MESSAGE`` events and ``_MAX_MESSAGE_BYTES`` encoded (an
    event larger than that in a message of its own)."""
    messages: list[ingest_pb2.SubmitEventsRequest] = []
    current: list[event_pb2.Event] = []
    size = 0
    for event in events:
        body = event.ByteSize()
        field = 1 + _varint_size(body) + body  # the tag, the length and the event
        if current and (size + field > _MAX_MESSAGE_BYTES or len(current) >= _MAX_EVENTS_PER_MESSAGE):
            messages.append(ingest_pb2.SubmitEventsRequest(events=current))
            current, size = [], 0
        current.append(event)
        size += field
    if current:
        messages.append(ingest_pb2.SubmitEventsRequest(events=current))
    return messages


def _outcome(result: ingest_pb2.EventResult) -> ingest_pb2.EventAck | ingest_pb2.EventError | None:
    which = result.WhichOneof("outcome")
    if which == "ack":
        return result.ack
    if which == "error":
        return result.error
    return None


_by_index = operator.itemgetter(0)


def _results(response: ingest_pb2.SubmitEventsResponse) -> list[_Result]:
    """The results a response carries, one per event, in index order: its
    ``result`` (the answer to a one-event message), or its ``acked`` runs
    (event ``first_index + i`` at ``partitions[i]``, ``offsets[i]``) and its
    ``errors`` merged. The same as the Rust SDK's ``stream_results::results``."""
    results: list[_Result] = []
    if response.HasField("result"):
        results.append((response.result.index, _outcome(response.result)))
    for run in response.acked:
        topic, schema_id, first = run.topic, run.schema_id, run.first_index
        results.extend(
            (first + i, ingest_pb2.EventAck(topic=topic, partition=partition, offset=offset, schema_id=schema_id))
            for i, (partition, offset) in enumerate(zip(run.partitions, run.offsets))
        )
    results.extend((error.index, _outcome(error)) for error in response.errors)
    results.sort(key=_by_index)
    return results


@dataclass
class _Done:
    """Every event is answered and no more will come."""


@dataclass
class _Retry:
    """Reconnect and resend."""

    reason: str


@dataclass
class _Fatal:
    """Not worth retrying."""

    error: TributaryError


_StreamEnd = Union[_Done, _Retry, _Fatal]

if TYPE_CHECKING:
    _Call = grpc.aio.StreamStreamCall[ingest_pb2.SubmitEventsRequest, ingest_pb2.SubmitEventsResponse]


class Sender:
    """Streams events to ingest over one ``SubmitEvents`` call; see the
    module documentation. Made by :meth:`Client.sender`.

    ``await sender.send(event)`` returns an :class:`asyncio.Future` that
    resolves to the event's ``EventAck`` (topic, partition, offset,
    schema_id) or raises :class:`EventRejected`; ``await sender.close()``
    (or leaving ``async with sender:``) waits for every answer.
    """

    def __init__(
        self,
        client: Client,
        *,
        window: int = 1024,
        give_up_after: float = 60.0,
        first_connect_timeout: float = 5.0,
        initial_backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if give_up_after <= 0 or first_connect_timeout <= 0:
            raise ValueError("give_up_after and first_connect_timeout must be positive")
        self._client = client
        self._window = window
        self._give_up_after = give_up_after
        self._first_connect_timeout = first_connect_timeout
        self._backoff = Backoff(initial_backoff, max_backoff)
        self._room = asyncio.Semaphore(window)
        # Events handed to the sender and not yet taken by a stream; None
        # marks the end (close).
        self._queue: asyncio.Queue[_InFlight | None] = asyncio.Queue()
        self._open = True  # no None taken from the queue yet
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._failure: TributaryError | None = None
        self._acked = 0
        self._rejected = 0
        self._reconnects = 0
        self._resent = 0
        self._unanswered = 0

    # -- statistics --------------------------------------------------------

    @property
    def acked(self) -> int:
        """Events acknowledged so far."""
        return self._acked

    @property
    def rejected(self) -> int:
        """Events refused so far (their futures raised :class:`EventRejected`)."""
        return self._rejected

    @property
    def reconnects(self) -> int:
        """How many times a stream was opened again after a failure
        (attempts that failed to connect included)."""
        return self._reconnects

    @property
    def resent(self) -> int:
        """Events written again on a new stream after the previous one failed
        (an event resent twice counts twice)."""
        return self._resent

    @property
    def unanswered(self) -> int:
        """Events sent and not answered yet."""
        return self._unanswered

    @property
    def failure(self) -> TributaryError | None:
        """Why the sender stopped, if it failed (gave up, or a status no retry fixes)."""
        return self._failure

    # -- the API -----------------------------------------------------------

    async def send(self, event: event_pb2.Event) -> asyncio.Future[ingest_pb2.EventAck]:
        """Queues ``event``, waiting while ``window`` events are unanswered,
        and returns the future of its answer: the ``EventAck``, or
        :class:`EventRejected` raised. An event without an idempotency key is
        sent with a random one (the caller's message is not changed), so a
        resend is counted once.

        Raises :class:`SenderClosed` after :meth:`close`, and the sender's
        failure (e.g. :class:`GaveUp`) once it has failed.
        """
        if not isinstance(event, event_pb2.Event):
            raise TypeError(f"send() takes a tributary.v1 Event, not {type(event).__name__}")
        self._check_open()
        # A copy: the caller's message is neither changed nor read again.
        queued = event_pb2.Event()
        queued.CopyFrom(event)
        if not queued.idempotency_key:
            queued.idempotency_key = str(uuid.uuid4())
        await self._room.acquire()
        try:
            self._check_open()
        except BaseException:
            self._room.release()
            raise
        answer: asyncio.Future[ingest_pb2.EventAck] = asyncio.get_running_loop().create_future()
        self._unanswered += 1
        answer.add_done_callback(self._answered)
        self._queue.put_nowait(_InFlight(queued, answer))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tributary-sender")
        return answer

    async def close(self) -> None:
        """Stops taking events and waits until every sent event is answered.
        Raises the sender's failure when it gave up (:class:`GaveUp`), never
        reached ingest (:class:`Unavailable`) or met a status no retry fixes
        (:class:`StatusError`, e.g. UNAUTHENTICATED)."""
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(None)
        if self._task is not None:
            # asyncio.wait neither cancels the task when close() is cancelled
            # nor re-raises its cancellation (after abort()) here.
            await asyncio.wait({self._task})
        if self._failure is not None:
            raise self._failure

    async def abort(self) -> None:
        """Stops at once: unanswered events fail with :class:`SenderClosed`
        (they may or may not have been stored)."""
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._fail_queued(SenderClosed("the sender was aborted"))

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Closes the sender, waiting for every answer; aborts it instead when
        the block raised."""
        if exc_type is None:
            await self.close()
        else:
            await self.abort()

    # -- internals ---------------------------------------------------------

    def _check_open(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closing:
            raise SenderClosed()

    def _answered(self, answer: asyncio.Future[ingest_pb2.EventAck]) -> None:
        self._unanswered -= 1
        self._room.release()

    def _resolve(self, in_flight: _InFlight, outcome: ingest_pb2.EventAck | ingest_pb2.EventError) -> None:
        answer = in_flight.answer
        if isinstance(outcome, ingest_pb2.EventAck):
            self._acked += 1
            if not answer.done():
                answer.set_result(outcome)
        else:
            self._rejected += 1
            if not answer.done():
                answer.set_exception(EventRejected.from_proto(outcome))
                # A caller that ignores refusals (fire and forget) must not
                # get asyncio's "exception was never retrieved" per event;
                # awaiting the future still raises it.
                answer.exception()

    def _fail(self, error: TributaryError, unanswered: deque[_InFlight]) -> None:
        self._failure = error
        for in_flight in unanswered:
            _set_exception(in_flight.answer, error)
        unanswered.clear()
        self._fail_queued(error)

    def _fail_queued(self, error: TributaryError) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                _set_exception(item.answer, error)

    async def _run(self) -> None:
        unanswered: deque[_InFlight] = deque()
        first_attempt: float | None = None
        failing_since: float | None = None
        attempts = 0
        failed_attempts = 0  # since the last progress
        reached = False
        self._backoff.reset()
        try:
            while True:
                # What the last stream left unanswered is sent again.
                resend = len(unanswered)
                if not unanswered:
                    if not self._open:
                        return
                    # Nothing waits for an answer, so no time without
                    # progress accrues while idle (a stream that ended
                    # while idle must not count against the next event).
                    failing_since = None
                    failed_attempts = 0
                    # Open a stream only when there is something to send.
                    item = await self._queue.get()
                    if item is None:
                        self._open = False
                        return
                    unanswered.append(item)
                attempts += 1
                now = time.monotonic()
                if first_attempt is None:
                    # From the first attempt, not from creation: a sender may
                    # wait long for its first event.
                    first_attempt = now
                if attempts > 1:
                    self._reconnects += 1
                stream = _Stream(self, unanswered, resend=resend)
                end = await stream.run()
                reached = reached or stream.reached
                if isinstance(end, _Done):
                    return
                if isinstance(end, _Fatal):
                    self._fail(end.error, unanswered)
                    return
                if stream.answered:
                    failing_since = None
                    failed_attempts = 0
                    self._backoff.reset()
                failed_attempts += 1
                now = time.monotonic()
                if not reached and now - first_attempt >= self._first_connect_timeout:
                    self._fail(Unavailable(self._client.url, end.reason), unanswered)
                    return
                if failing_since is None:
                    failing_since = now
                if now - failing_since >= self._give_up_after:
                    self._fail(GaveUp(self._client.url, failed_attempts, now - failing_since, end.reason), unanswered)
                    return
                delay = self._backoff.next()
                log.debug(
                    "stream to %s failed (%s); reconnecting in %.2f s with %d unanswered",
                    self._client.url,
                    end.reason,
                    delay,
                    len(unanswered),
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self._fail(SenderClosed("the sender was aborted"), unanswered)
            raise
        except BaseException as error:  # a bug: never leave callers waiting
            self._fail(SenderClosed(f"the sender stopped: {error!r}"), unanswered)
            raise


class _Stream:
    """One ``SubmitEvents`` call: resends ``unanswered`` first, then forwards
    new events, many to a message, and answers events in order as results
    arrive."""

    def __init__(self, sender: Sender, unanswered: deque[_InFlight], *, resend: int) -> None:
        self.sender = sender
        self.unanswered = unanswered
        # How many of the first unanswered events a previous stream sent.
        self.resend = resend
        self.reached = False
        self.answered = False
        self.write_failure: str | None = None
        # Set once the response headers (or the call's end) arrived.
        self.headers = asyncio.Event()

    async def run(self) -> _StreamEnd:
        sender = self.sender
        client = sender._client
        call = client.ingest_stub.SubmitEvents(metadata=client.metadata)
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._write(call), name="tributary-sender-writer")
        reader = loop.create_task(self._read(call), name="tributary-sender-reader")
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if reader not in done and self.write_failure is not None:
                # The writer failed unexpectedly: end this stream and retry.
                return _Retry(self.write_failure)
            return await reader
        finally:
            # Cancel the call first, so a writer blocked on it (or on the
            # queue) cannot outlive the stream.
            call.cancel()
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                try:
                    await task
                except asyncio.CancelledError:
                    pass

    async def _write(self, call: _Call) -> None:
        sender = self.sender
        # Write only once ingest answered the call's headers: a call it
        # refuses at once (UNAUTHENTICATED) then ends before anything is
        # written, as a write racing that refusal can make grpc report
        # "INTERNAL: Internal error from Core" instead of the status. A
        # server that holds its headers back until the first message costs
        # a second here, not a deadlock.
        # asyncio.wait, not wait_for: on Python < 3.12 wait_for can swallow a
        # cancellation that arrives as the event is set.
        headers = asyncio.ensure_future(self.headers.wait())
        try:
            done, _ = await asyncio.wait({headers}, timeout=_HEADERS_WAIT)
        finally:
            headers.cancel()
        if not done:
            log.debug("no response headers from %s within %.1f s; writing anyway", sender._client.url, _HEADERS_WAIT)
        if call.done():
            return
        try:
            # The unanswered events first (resent, in order), with whatever
            # is queued behind them.
            resending = self.resend
            batch = list(self.unanswered)
            while True:
                batch += self._take_queued()
                if not batch:
                    if not sender._open:
                        break
                    item = await sender._queue.get()
                    if item is None:
                        sender._open = False
                        break
                    # Then whatever else is queued by now goes with it.
                    self.unanswered.append(item)
                    batch.append(item)
                    continue
                for message in _messages([in_flight.event for in_flight in batch]):
                    await call.write(message)
                    resent = min(len(message.events), resending)
                    sender._resent += resent
                    resending -= resent
                batch = []
            # Half-close: ingest answers the rest and ends the stream.
            await call.done_writing()
        except asyncio.CancelledError:
            raise
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            # The call ended: the reader sees its status. Cancelling here
            # would race it and could hide a status no retry fixes.
            pass
        except Exception as error:  # anything else ends this stream (see run)
            self.write_failure = f"writing failed: {error!r}"

    def _take_queued(self) -> list[_InFlight]:
        """The events queued now (at most a message's worth), moved to
        ``unanswered``; the end mark ends the sender's queue."""
        sender = self.sender
        taken: list[_InFlight] = []
        while sender._open and len(taken) < _MAX_EVENTS_PER_MESSAGE:
            try:
                item = sender._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if item is None:
                sender._open = False
                break
            self.unanswered.append(item)
            taken.append(item)
        return taken

    async def _read(self, call: _Call) -> _StreamEnd:
        sender = self.sender
        index = 0
        try:
            try:
                await call.initial_metadata()
            finally:
                self.headers.set()
            if not call.done():
                self.reached = True
            while True:
                if not sender._open and not self.unanswered:
                    await self._finish(call)
                    return _Done()
                response = await call.read()
                if response is grpc.aio.EOF:
                    if not sender._open and not self.unanswered:
                        return _Done()
                    return _Retry("ingest ended the stream early")
                assert isinstance(response, ingest_pb2.SubmitEventsResponse)
                self.reached = True
                for result_index, outcome in _results(response):
                    if result_index != index:
                        return _Retry(f"ingest answered out of order at {index}")
                    if outcome is None:
                        return _Retry("a result without an outcome")
                    if (
                        isinstance(outcome, ingest_pb2.EventError)
                        and outcome.code == ingest_pb2.EVENT_ERROR_CODE_UNAVAILABLE
                    ):
                        # Not stored: resend it and everything after it.
                        return _Retry(f"UNAVAILABLE: {outcome.message}")
                    if not self.unanswered:
                        return _Retry(f"ingest answered event {index}, which was not sent")
                    index += 1
                    self.answered = True
                    sender._resolve(self.unanswered.popleft(), outcome)
        except grpc.aio.AioRpcError as error:
            return self._classify(error.code(), error.details() or "")

    async def _finish(self, call: _Call) -> None:
        """Reads the end of a stream whose events are all answered, briefly."""
        try:
            await asyncio.wait_for(call.read(), 1.0)
        except (asyncio.TimeoutError, grpc.aio.AioRpcError):
            pass

    def _classify(self, code: grpc.StatusCode, details: str) -> _StreamEnd:
        if code in _FATAL:
            return _Fatal(StatusError(code, details))
        reason = f"{code.name}: {details}"
        if code == grpc.StatusCode.CANCELLED and self.write_failure:
            reason = self.write_failure
        return _Retry(reason)


def _set_exception(answer: asyncio.Future[ingest_pb2.EventAck], error: BaseException) -> None:
    if answer.done():
        return
    answer.set_exception(error)
    # The sender's failure is also raised by close(): a caller that never
    # looks at this future is told there, so asyncio need not log it as
    # "never retrieved".
    answer.exception()
