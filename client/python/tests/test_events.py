"""The event builders: defaults (event time now, a random UUID4 idempotency
key), every optional field, extra fields of newer schema versions, and the
values they refuse before anything is sent."""

from __future__ import annotations

import datetime
import doctest
import pathlib
import sys
import unittest
import uuid
from collections.abc import Callable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

import tributary_client as trib  # noqa: E402
from tributary_client import _events  # noqa: E402

UTC = datetime.timezone.utc


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: str | None) -> unittest.TestSuite:
    tests.addTests(doctest.DocTestSuite(_events))
    return tests


class BuildersTest(unittest.TestCase):
    def test_ad_click_defaults(self) -> None:
        before = datetime.datetime.now(UTC)
        event = trib.ad_click("adv-1", "203.0.113.7", "curl/8", "https://example.com/")
        after = datetime.datetime.now(UTC)
        self.assertEqual(event.event_type, "ad_click")
        self.assertEqual(event.key, "")  # ingest keys it by the advertiser
        self.assertEqual(event.WhichOneof("payload"), "ad_click")
        self.assertEqual(event.ad_click.advertiser_id, "adv-1")
        self.assertEqual(event.ad_click.ip_address, "203.0.113.7")
        self.assertEqual(event.ad_click.user_agent, "curl/8")
        self.assertEqual(event.ad_click.referring_url, "https://example.com/")
        self.assertFalse(event.ad_click.HasField("campaign_id"))
        self.assertFalse(event.ad_click.HasField("metadata"))
        self.assertFalse(event.HasField("extra_fields"))
        self.assertEqual(uuid.UUID(event.idempotency_key).version, 4)
        at = event.event_time.ToDatetime(tzinfo=UTC)
        self.assertTrue(before - datetime.timedelta(milliseconds=1) <= at <= after)

    def test_every_idempotency_key_is_new(self) -> None:
        keys = {trib.price_tick("ETH-USD", "a", 1.0).idempotency_key for _ in range(100)}
        self.assertEqual(len(keys), 100)

    def test_ad_click_options(self) -> None:
        at = datetime.datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
        event = trib.ad_click(
            "adv-1",
            "2001:db8::1",
            "ua",
            "https://example.com/",
            event_time=at,
            idempotency_key="click-1",
            metadata={"slot": "top", "rank": 2, "tags": ["a", None]},
            campaign_id="spring",
            fields={"country": "DE"},
            key="adv-1",
        )
        self.assertEqual(event.event_time.ToDatetime(tzinfo=UTC), at)
        self.assertEqual(event.event_time.seconds, int(at.timestamp()))
        self.assertEqual(event.idempotency_key, "click-1")
        self.assertEqual(event.key, "adv-1")
        self.assertEqual(event.ad_click.campaign_id, "spring")
        self.assertEqual(event.ad_click.metadata["slot"], "top")
        self.assertEqual(event.ad_click.metadata["rank"], 2)
        self.assertEqual(list(event.ad_click.metadata["tags"]), ["a", None])
        self.assertEqual(dict(event.extra_fields), {"country": "DE"})

    def test_an_integer_a_struct_would_round_is_refused(self) -> None:
        with self.assertRaises(trib.InvalidArgument) as refused:
            trib.ad_click("a", "10.0.0.1", "u", "https://x/", fields={"visits": [1, 2**60 + 1]})
        self.assertEqual(refused.exception.field, "extra_fields.visits[1]")
        event = trib.ad_click("a", "10.0.0.1", "u", "https://x/", fields={"visits": 2**53})
        self.assertEqual(event.extra_fields["visits"], 2**53)

    def test_price_tick(self) -> None:
        event = trib.price_tick("ETH-USD", "coinbase", 3012, volume=2, fields={"venue": "spot"})
        self.assertEqual(event.event_type, "price_tick")
        self.assertEqual(event.price_tick.pair, "ETH-USD")
        self.assertEqual(event.price_tick.source, "coinbase")
        self.assertEqual(event.price_tick.price, 3012.0)
        self.assertEqual(event.price_tick.volume, 2.0)
        self.assertEqual(event.extra_fields["venue"], "spot")
        self.assertFalse(trib.price_tick("ETH-USD", "coinbase", 1.5).price_tick.HasField("volume"))

    def test_a_negative_price_is_left_to_ingest(self) -> None:
        # Ingest is the one judge of validity; the builder sends it as is.
        self.assertEqual(trib.price_tick("ETH-USD", "a", -1.0).price_tick.price, -1.0)

    def test_generic(self) -> None:
        at = datetime.datetime(2026, 1, 1, tzinfo=UTC)
        event = trib.generic("signup", {"plan": "pro", "nested": {"a": [1, 2]}}, key="user-7", event_time=at)
        self.assertEqual((event.event_type, event.key), ("signup", "user-7"))
        self.assertEqual(event.WhichOneof("payload"), "generic")
        self.assertEqual(event.generic["plan"], "pro")
        self.assertEqual(list(event.generic["nested"]["a"]), [1, 2])
        self.assertFalse(event.HasField("extra_fields"))

    def test_a_protobuf_timestamp_is_taken_as_is(self) -> None:
        stamp = trib.timestamp(datetime.datetime(2026, 1, 1, tzinfo=UTC))
        self.assertEqual(trib.price_tick("a", "b", 1.0, event_time=stamp).event_time, stamp)

    def test_refusals_name_the_field(self) -> None:
        cases: list[tuple[Callable[[], object], str]] = [
            (lambda: trib.ad_click("a", "b", "c", "d", event_time=datetime.datetime(2026, 1, 1)), "event_time"),
            (lambda: trib.ad_click("a", "b", "c", "d", event_time=1700000000), "event_time"),  # type: ignore[arg-type]
            (lambda: trib.ad_click("a", "b", "c", "d", metadata=[1]), "ad_click.metadata"),  # type: ignore[arg-type]
            (lambda: trib.ad_click("a", "b", "c", "d", fields={"x": object()}), "extra_fields"),
            (lambda: trib.price_tick("a", "b", "1.5"), "price_tick.price"),  # type: ignore[arg-type]
            (lambda: trib.price_tick("a", "b", 1.0, volume=True), "price_tick.volume"),
            (lambda: trib.generic("t", "not a mapping", key="k"), "generic"),  # type: ignore[arg-type]
        ]
        for build, field in cases:
            with self.subTest(field=field), self.assertRaises(trib.InvalidArgument) as refused:
                build()
            self.assertEqual(refused.exception.field, field)
            self.assertEqual(refused.exception.code, "INVALID_ARGUMENT")
            self.assertIsInstance(refused.exception, ValueError)


if __name__ == "__main__":
    unittest.main()
