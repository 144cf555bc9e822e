"""The sender and the query pager against an in-process fake of ingest and
the query API: answers in order, per-event refusals, the window, resend
after a failed stream or a restart with the original idempotency keys,
statuses that fail at once, giving up, failing fast when nothing listens,
and the wire format: queued (and resent) events many to a message, answers
read from compact responses, from results spread over several responses
and from one-result responses."""

from __future__ import annotations

import asyncio
import datetime
import pathlib
import socket
import sys
import threading
import time
import unittest
from collections.abc import Callable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import grpc  # noqa: E402

import tributary_client as trib  # noqa: E402
from fake_server import FakeServer  # noqa: E402
from tributary_client import sync  # noqa: E402


def click(i: int, ip: str | None = None) -> trib.Event:
    return trib.ad_click("adv-1", ip or f"10.0.0.{i % 250}", "unit", "https://example.com/", idempotency_key=f"k-{i}")


def _quiet_slow_sends() -> None:
    """Queueing hundreds of events without yielding takes longer than the
    test loop's debug mode reports as slow; these tests do it on purpose."""
    asyncio.get_running_loop().slow_callback_duration = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SenderTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.server = FakeServer()
        await self.server.start()
        self.client = trib.Client(self.server.url, api_key="secret")

    async def asyncTearDown(self) -> None:
        await self.client.close()
        await self.server.stop()

    async def test_answers_arrive_in_order_and_a_refusal_names_the_field(self) -> None:
        async with self.client.sender(window=8) as sender:
            answers = [await sender.send(click(i, "bad" if i == 3 else None)) for i in range(20)]
        for i, answer in enumerate(answers):
            if i == 3:
                with self.assertRaises(trib.EventRejected) as refused:
                    await answer
                self.assertEqual(refused.exception.code, "INVALID_ARGUMENT")
                self.assertEqual(refused.exception.field, "ad_click.ip_address")
                self.assertIn("not an IPv4", refused.exception.message)
            else:
                ack = await answer
                self.assertEqual(ack.topic, "tributary.events.ad_click")
        self.assertEqual(self.server.ingest.acked, [f"k-{i}" for i in range(20) if i != 3])
        self.assertEqual((sender.acked, sender.rejected, sender.reconnects), (19, 1, 0))
        self.assertEqual(self.server.ingest.metadata[0]["authorization"], "Bearer secret")

    async def test_a_server_that_holds_its_headers_back_is_still_written_to(self) -> None:
        self.server.ingest.headers_first = False
        async with self.client.sender() as sender:
            answers = [await sender.send(click(i)) for i in range(3)]
        self.assertEqual([(await a).offset for a in answers], [0, 1, 2])

    async def test_abort_while_the_server_holds_its_headers_back_returns_and_close_says_aborted(self) -> None:
        self.server.ingest.headers_first = False
        sender = self.client.sender()
        answer = await sender.send(click(0))
        await asyncio.sleep(0.2)  # the stream is open, waiting for headers
        await asyncio.wait_for(sender.abort(), 5)
        with self.assertRaises(trib.SenderClosed):
            await answer
        with self.assertRaises(trib.SenderClosed):
            await sender.close()

    async def test_send_waits_while_the_window_is_full(self) -> None:
        self.server.ingest.flowing.clear()
        sender = self.client.sender(window=4)
        answers = [await sender.send(click(i)) for i in range(4)]
        fifth = asyncio.ensure_future(sender.send(click(4)))
        await asyncio.sleep(0.3)
        self.assertFalse(fifth.done(), "a fifth event was taken with four unanswered")
        self.assertEqual(sender.unanswered, 4)
        self.server.ingest.flowing.set()
        answers.append(await asyncio.wait_for(fifth, 5))
        await sender.close()
        self.assertEqual([(await a).offset for a in answers], [0, 1, 2, 3, 4])

    async def test_a_failed_stream_is_reopened_and_unanswered_events_resent_with_their_keys(self) -> None:
        self.server.ingest.fail_after = 30
        async with self.client.sender(window=16, initial_backoff=0.01) as sender:
            answers = [await sender.send(click(i)) for i in range(100)]
        offsets = [(await a).offset for a in answers]
        self.assertEqual(offsets, list(range(100)))
        self.assertEqual(self.server.ingest.acked, [f"k-{i}" for i in range(100)])
        self.assertGreaterEqual(self.server.ingest.streams, 2)
        self.assertGreaterEqual(sender.reconnects, 1)
        self.assertGreater(sender.resent, 0)
        # The second stream carried the unanswered events again, from the
        # first unanswered one on, in order.
        first, second = self.server.ingest.stream_keys[:2]
        self.assertEqual(first[:30], [f"k-{i}" for i in range(30)])
        self.assertEqual(second, [f"k-{i}" for i in range(30, 30 + len(second))])
        self.assertGreater(len(self.server.ingest.received), 100)

    async def test_events_resent_after_a_failure_go_many_to_a_message(self) -> None:
        _quiet_slow_sends()
        # Everything is queued before the first stream fails, so the second
        # stream resends the unanswered events in a few messages.
        self.server.ingest.fail_after = 10
        sender = self.client.sender(window=500, initial_backoff=0.01)
        answers = [await sender.send(click(i)) for i in range(500)]
        await sender.close()
        self.assertEqual([(await a).offset for a in answers], list(range(500)))
        self.assertEqual(self.server.ingest.acked, [f"k-{i}" for i in range(500)])
        second = self.server.ingest.stream_keys[1]
        self.assertEqual(second, [f"k-{i}" for i in range(10, 500)])
        self.assertEqual(sender.resent, 490)
        self.assertLess(len(self.server.ingest.messages), 10, self.server.ingest.messages)
        self.assertEqual(sum(self.server.ingest.messages), len(self.server.ingest.received))

    async def test_queued_events_go_many_to_a_message_in_order_and_are_answered_compactly(self) -> None:
        _quiet_slow_sends()
        async with self.client.sender(window=2000) as sender:
            # send() does not wait while the window has room, so every event
            # is queued before the stream writes.
            answers = [await sender.send(click(i, "bad" if i % 100 == 7 else None)) for i in range(1500)]
        ingest = self.server.ingest
        self.assertEqual([e.idempotency_key for e in ingest.received], [f"k-{i}" for i in range(1500)])
        self.assertEqual(sum(ingest.messages), 1500)
        self.assertLessEqual(len(ingest.messages), 4, ingest.messages)
        self.assertLessEqual(max(ingest.messages), 1024)
        # Answered in runs with the refusals between them, not one by one.
        self.assertFalse(any(r.HasField("result") for r in ingest.responses))
        self.assertLess(len(ingest.responses), 100)
        self.assertGreater(sum(len(r.acked) for r in ingest.responses), 15)
        offset = 0
        for i, answer in enumerate(answers):
            if i % 100 == 7:
                with self.assertRaises(trib.EventRejected) as refused:
                    await answer
                self.assertEqual(refused.exception.field, "ad_click.ip_address")
            else:
                ack = await answer
                self.assertEqual((ack.topic, ack.offset, ack.schema_id), ("tributary.events.ad_click", offset, 1))
                offset += 1
        self.assertEqual((sender.acked, sender.rejected), (1485, 15))

    async def test_results_spread_over_several_responses_are_matched_in_order(self) -> None:
        self.server.ingest.results_per_response = 3
        async with self.client.sender(window=64) as sender:
            answers = [await sender.send(click(i, "bad" if i % 10 == 4 else None)) for i in range(200)]
        self.assertTrue(all(sum(len(run.offsets) for run in r.acked) + len(r.errors) <= 3 for r in self.server.ingest.responses))
        self.assertLess(len(self.server.ingest.messages), len(self.server.ingest.responses))
        await self._check_answers(answers, bad=lambda i: i % 10 == 4)

    async def test_one_result_responses_are_matched_in_order(self) -> None:
        self.server.ingest.one_result_per_response = True
        async with self.client.sender(window=64) as sender:
            answers = [await sender.send(click(i, "bad" if i % 10 == 4 else None)) for i in range(200)]
        self.assertEqual(len(self.server.ingest.responses), 200)
        self.assertTrue(all(r.HasField("result") for r in self.server.ingest.responses))
        await self._check_answers(answers, bad=lambda i: i % 10 == 4)

    async def _check_answers(self, answers: list[asyncio.Future[trib.EventAck]], bad: Callable[[int], bool]) -> None:
        offset = 0
        for i, answer in enumerate(answers):
            if bad(i):
                with self.assertRaises(trib.EventRejected):
                    await answer
            else:
                self.assertEqual((await answer).offset, offset)
                offset += 1

    async def test_an_event_answered_unavailable_is_resent(self) -> None:
        self.server.ingest.unavailable_once = {"k-5"}
        async with self.client.sender(window=4, initial_backoff=0.01) as sender:
            answers = [await sender.send(click(i)) for i in range(10)]
        acks = [await a for a in answers]
        self.assertEqual(len(acks), 10)
        # Events after k-5 the fake had already acknowledged are sent again
        # with the same keys (the processor counts them once).
        self.assertEqual(sorted(set(self.server.ingest.acked)), sorted(f"k-{i}" for i in range(10)))
        self.assertEqual(self.server.ingest.acked.count("k-5"), 1)
        self.assertEqual(sender.reconnects, 1)

    async def test_ingest_restarting_on_the_same_port_is_survived(self) -> None:
        sender = self.client.sender(window=32, initial_backoff=0.05)
        answers = [await sender.send(click(i)) for i in range(10)]
        await asyncio.gather(*answers)
        await self.server.stop()
        more = [await sender.send(click(i)) for i in range(10, 20)]
        await asyncio.sleep(0.5)
        await self.server.start()
        await asyncio.wait_for(sender.close(), 10)
        self.assertEqual([(await a).offset for a in more], list(range(10, 20)))

    async def test_unauthenticated_fails_the_pending_events_at_once(self) -> None:
        self.server.ingest.status = grpc.StatusCode.UNAUTHENTICATED
        sender = self.client.sender(give_up_after=30)
        started = time.monotonic()
        answers = [await sender.send(click(i)) for i in range(5)]
        with self.assertRaises(trib.StatusError) as failed:
            await asyncio.wait_for(sender.close(), 5)
        self.assertEqual(failed.exception.code, "UNAUTHENTICATED")
        self.assertLess(time.monotonic() - started, 2)
        for answer in answers:
            self.assertIsInstance(answer.exception(), trib.StatusError)
        self.assertEqual(self.server.ingest.streams, 1)
        with self.assertRaises(trib.StatusError):
            await sender.send(click(9))

    async def test_the_sender_gives_up_after_a_time_without_progress(self) -> None:
        sender = self.client.sender(give_up_after=1.0, initial_backoff=0.05, max_backoff=0.2)
        await (await sender.send(click(0)))
        await self.server.stop()
        started = time.monotonic()
        answer = await sender.send(click(1))
        with self.assertRaises(trib.GaveUp) as gave_up:
            await asyncio.wait_for(answer, 10)
        self.assertGreaterEqual(time.monotonic() - started, 1.0)
        self.assertIn(self.server.url, str(gave_up.exception))
        with self.assertRaises(trib.GaveUp):
            await sender.close()

    async def test_time_idle_after_a_failed_stream_does_not_count_towards_giving_up(self) -> None:
        sender = self.client.sender(give_up_after=0.8, initial_backoff=0.05, max_backoff=0.2)
        await (await sender.send(click(0)))
        await self.server.stop()  # the idle stream fails
        await asyncio.sleep(1.2)
        answer = await sender.send(click(1))
        await asyncio.sleep(0.3)
        await self.server.start()
        self.assertEqual((await asyncio.wait_for(answer, 10)).offset, 1)
        await sender.close()

    async def test_aggregates_follow_page_tokens(self) -> None:
        start = trib.timestamp(datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
        rows = [a async for a in self.client.aggregates("ad_click", start, start, keys=["adv-1"], order="desc")]
        self.assertEqual([a.key for a in rows], [f"adv-{i}" for i in range(5)])
        self.assertEqual(len(self.server.query.requests), 3)
        self.assertEqual(list(self.server.query.requests[0].keys), ["adv-1"])
        with self.assertRaises(trib.StatusError) as bad:
            _ = [a async for a in self.client.aggregates("ad_click", start, start, page_size=-1)]
        self.assertEqual((bad.exception.code, bad.exception.field), ("INVALID_ARGUMENT", "page_size"))


class UnreachableTest(unittest.IsolatedAsyncioTestCase):
    async def test_connect_to_a_stopped_stack_fails_fast_naming_the_address(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        started = time.monotonic()
        with self.assertRaises(trib.Unavailable) as failed:
            await trib.connect(url, timeout=1.5)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(failed.exception.url, url)
        self.assertIn(url, str(failed.exception))
        self.assertIn("refused", str(failed.exception).lower())

    async def test_a_sender_that_never_reaches_ingest_fails_naming_the_address(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        async with trib.Client(url) as client:
            sender = client.sender(first_connect_timeout=1.0)
            started = time.monotonic()
            answer = await sender.send(click(0))
            with self.assertRaises(trib.Unavailable) as failed:
                await asyncio.wait_for(answer, 10)
            self.assertLess(time.monotonic() - started, 4)
            self.assertIn(url, str(failed.exception))


class SyncClientTest(unittest.TestCase):
    def setUp(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = FakeServer()
        self.loop.run_until_complete(self.server.start())
        # The fake serves from this thread's loop while the client blocks.
        self.serving = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.serving.start()

    def tearDown(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.serving.join()
        self.loop.close()

    def test_send_all_and_aggregates(self) -> None:
        with sync.Client(self.server.url) as client:
            results = client.send_all([click(0), click(1, "bad"), click(2)])
            self.assertIsInstance(results[0], trib.EventAck)
            self.assertIsInstance(results[1], trib.EventRejected)
            self.assertEqual(getattr(results[2], "offset"), 1)
            now = datetime.datetime.now(datetime.timezone.utc)
            rows = client.aggregates("ad_click", now - datetime.timedelta(hours=1), now)
            self.assertEqual(len(rows), 5)

    def test_a_stopped_stack_fails_fast(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        started = time.monotonic()
        with self.assertRaises(trib.Unavailable):
            sync.Client(url, connect_timeout=1.0)
        self.assertLess(time.monotonic() - started, 5)


if __name__ == "__main__":
    unittest.main()
