"""The sender and the query pager against an in-process fake of ingest and
the query API: answers in order, per-event refusals, the window, resend
after a failed stream or a restart with the original idempotency keys,
statuses that fail at once, giving up, failing fast when nothing listens."""

from __future__ import annotations

import asyncio
import datetime
import pathlib
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import grpc  # noqa: E402

import tributary_client as trib  # noqa: E402
from fake_server import FakeServer  # noqa: E402
from tributary_client import sync  # noqa: E402


def click(i: int, ip: str | None = None) -> trib.Event:
    return trib.ad_click("adv-1", ip or f"10.0.0.{i % 250}", "unit", "https://example.com/", idempotency_key=f"k-{i}")


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
        # The first event the second stream carried is the first unanswered.
        keys = [e.idempotency_key for e in self.server.ingest.received]
        self.assertGreater(len(keys), 100)

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
