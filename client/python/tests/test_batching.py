"""The sender's wire format: queued events go many to a message (at most
1024 events and 64 KiB, an event larger than that alone, in order), and
every response reads back as one result per event, in index order (a
one-event `result`, or `acked` runs and `errors` merged)."""

from __future__ import annotations

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

from tributary.v1 import event_pb2, ingest_pb2  # noqa: E402
from tributary_client._sender import (  # noqa: E402
    _MAX_EVENTS_PER_MESSAGE,
    _MAX_MESSAGE_BYTES,
    _messages,
    _results,
)


def event(key_bytes: int, n: int = 0) -> event_pb2.Event:
    return event_pb2.Event(key="k" * key_bytes, idempotency_key=f"e-{n}")


def ack(index: int, topic: str, schema_id: int, partition: int, offset: int) -> ingest_pb2.EventResult:
    return ingest_pb2.EventResult(
        index=index, ack=ingest_pb2.EventAck(topic=topic, partition=partition, offset=offset, schema_id=schema_id)
    )


def error(index: int, code: int = ingest_pb2.EVENT_ERROR_CODE_INVALID_ARGUMENT) -> ingest_pb2.EventResult:
    return ingest_pb2.EventResult(
        index=index, error=ingest_pb2.EventError(code=code, field="ad_click.ip_address", message="bad")
    )


def as_results(results: list[tuple[int, object]]) -> list[ingest_pb2.EventResult]:
    """`_results`' (index, outcome) pairs as EventResults, to compare."""
    out = []
    for index, outcome in results:
        if isinstance(outcome, ingest_pb2.EventAck):
            out.append(ingest_pb2.EventResult(index=index, ack=outcome))
        elif isinstance(outcome, ingest_pb2.EventError):
            out.append(ingest_pb2.EventResult(index=index, error=outcome))
        else:
            out.append(ingest_pb2.EventResult(index=index))
    return out


class MessagesTest(unittest.TestCase):
    def test_queued_events_go_many_to_a_message_under_the_size_limit_in_order(self) -> None:
        events = [event(1000, n) for n in range(100)]
        messages = _messages(events)
        sizes = [len(m.events) for m in messages]
        for m in messages:
            self.assertFalse(m.HasField("event"))
            self.assertLessEqual(m.ByteSize(), _MAX_MESSAGE_BYTES)
        self.assertEqual(sum(sizes), 100, "every event, once")
        self.assertGreaterEqual(len(sizes), 2, sizes)
        self.assertGreater(sizes[0], 50, sizes)
        # Filled up to the limit: the next event would not have fitted.
        self.assertGreater(messages[0].ByteSize() + events[0].ByteSize() + 3, _MAX_MESSAGE_BYTES)
        self.assertEqual(
            [e.idempotency_key for m in messages for e in m.events], [f"e-{n}" for n in range(100)], "in order"
        )

    def test_at_most_1024_events_go_in_one_message(self) -> None:
        messages = _messages([event(1, n) for n in range(2500)])
        self.assertEqual([len(m.events) for m in messages], [_MAX_EVENTS_PER_MESSAGE, _MAX_EVENTS_PER_MESSAGE, 452])
        self.assertEqual([e.idempotency_key for m in messages for e in m.events], [f"e-{n}" for n in range(2500)])

    def test_an_event_larger_than_the_limit_goes_alone_and_order_is_kept(self) -> None:
        messages = _messages([event(10), event(20), event(_MAX_MESSAGE_BYTES), event(30)])
        self.assertEqual([[len(e.key) for e in m.events] for m in messages], [[10, 20], [_MAX_MESSAGE_BYTES], [30]])
        self.assertGreater(messages[1].ByteSize(), _MAX_MESSAGE_BYTES)
        self.assertEqual(_messages([]), [])

    def test_the_limit_is_the_encoded_message_size(self) -> None:
        def field(e: event_pb2.Event) -> int:
            return ingest_pb2.SubmitEventsRequest(events=[e]).ByteSize()

        small = event(100)
        # The largest second event with which the message is exactly 64 KiB.
        key = _MAX_MESSAGE_BYTES - field(small)
        while field(event(key)) + field(small) > _MAX_MESSAGE_BYTES:
            key -= 1
        self.assertEqual(field(event(key)) + field(small), _MAX_MESSAGE_BYTES)
        fits = _messages([small, event(key)])
        self.assertEqual([len(m.events) for m in fits], [2])
        self.assertEqual(fits[0].ByteSize(), _MAX_MESSAGE_BYTES)
        # One byte more and it goes in the next message.
        self.assertEqual([len(m.events) for m in _messages([small, event(key + 1)])], [1, 1])


class ResultsTest(unittest.TestCase):
    def test_runs_and_the_errors_between_them_read_back_in_index_order(self) -> None:
        response = ingest_pb2.SubmitEventsResponse(
            acked=[
                ingest_pb2.AckedEvents(
                    first_index=7, topic="clicks", schema_id=1, partitions=[0, 2], offsets=[10, 4]
                ),
                ingest_pb2.AckedEvents(first_index=10, topic="clicks", schema_id=1, partitions=[1], offsets=[5]),
                ingest_pb2.AckedEvents(first_index=11, topic="ticks", schema_id=2, partitions=[0], offsets=[3]),
                ingest_pb2.AckedEvents(
                    first_index=14, topic="ticks", schema_id=3, partitions=[0, 0], offsets=[4, 5]
                ),
            ],
            errors=[error(13, ingest_pb2.EVENT_ERROR_CODE_UNAVAILABLE), error(9), error(12)],
        )
        self.assertEqual(
            as_results(_results(response)),
            [
                ack(7, "clicks", 1, 0, 10),
                ack(8, "clicks", 1, 2, 4),
                error(9),
                ack(10, "clicks", 1, 1, 5),
                ack(11, "ticks", 2, 0, 3),
                error(12),
                error(13, ingest_pb2.EVENT_ERROR_CODE_UNAVAILABLE),
                ack(14, "ticks", 3, 0, 4),
                ack(15, "ticks", 3, 0, 5),
            ],
        )

    def test_a_response_of_errors_alone_reads_as_them(self) -> None:
        response = ingest_pb2.SubmitEventsResponse(errors=[error(4), error(3)])
        self.assertEqual(as_results(_results(response)), [error(3), error(4)])

    def test_a_one_event_response_reads_as_its_result(self) -> None:
        self.assertEqual(
            as_results(_results(ingest_pb2.SubmitEventsResponse(result=error(3)))), [error(3)]
        )
        self.assertEqual(
            as_results(_results(ingest_pb2.SubmitEventsResponse(result=ack(0, "t", 1, 2, 3)))),
            [ack(0, "t", 1, 2, 3)],
        )
        # A result with neither an ack nor an error reads as no outcome.
        self.assertEqual(_results(ingest_pb2.SubmitEventsResponse(result=ingest_pb2.EventResult(index=5))), [(5, None)])

    def test_an_empty_response_answers_nothing(self) -> None:
        self.assertEqual(_results(ingest_pb2.SubmitEventsResponse()), [])


if __name__ == "__main__":
    unittest.main()
