#!/usr/bin/env python3
"""End-to-end run of the Python SDK against a real pipeline (driven by
stack/tests/sdk_python.rs, which SIGKILLs ingest mid-stream and restarts it).

    PYTHONPATH=client/python/src python3 client/python/tests/e2e_stream.py --url http://127.0.0.1:50051

1. Streams EVENTS mixed events (ad clicks over 8 advertisers, price ticks over
   2 pairs x 2 sources, event times spread over four one-minute windows that
   ended in the last minutes, in event-time order) through ONE sender,
   printing `acked N` every --progress-every acknowledgements. Every 333rd
   event is invalid (a bad IP address, or a negative price).
2. Checks that each invalid event was refused naming its field and every
   other one acknowledged.
3. Computes the ground truth from the acknowledgements (per key and window:
   ad_click count and distinct IPs; price_tick count, min, max and sum) and
   polls GetAggregates through the SDK until the stored aggregates equal it,
   then checks GetPriceAccuracy against the same truth.

Prints one JSON line `{"summary": {...}}` at the end; exit status 0 only
when everything matched.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import tributary_client as trib

UTC = datetime.timezone.utc
MINUTE = datetime.timedelta(minutes=1)
WINDOWS = 4
ADVERTISERS = [f"adv-{i}" for i in range(8)]
PAIRS = ["ETH-USD", "BTC-USD"]
SOURCES = ["api-1", "api-2"]


@dataclass
class Planned:
    event: trib.Event
    # The field ingest must name when it refuses the event; None when valid.
    invalid_field: str | None


def workload(count: int, base: datetime.datetime) -> list[Planned]:
    span = WINDOWS * MINUTE
    planned = []
    for i in range(count):
        at = base + span * i / count
        key = f"e2e-{i}"
        invalid = i % 333 == 332  # clicks and ticks alike
        if i % 5 < 3:
            advertiser = ADVERTISERS[i % len(ADVERTISERS)]
            ip = "not-an-ip" if invalid else f"10.{i % 8}.{(i // 8) % 5}.{i % 3}"
            event = trib.ad_click(advertiser, ip, "e2e-python", "https://example.com/", event_time=at, idempotency_key=key)
            planned.append(Planned(event, "ad_click.ip_address" if invalid else None))
        else:
            # Quarter units: every sum of them is exact in a double, in any order.
            price = -1.0 if invalid else 100.0 + (i * 37) % 200 + 0.25 * (i % 4)
            pair, source = PAIRS[i % 2], SOURCES[(i // 2) % 2]
            event = trib.price_tick(pair, source, price, volume=1.0, event_time=at, idempotency_key=key)
            planned.append(Planned(event, "price_tick.price" if invalid else None))
    return planned


@dataclass
class Truth:
    """What the SDK was told was stored, per (key, window start in ms)."""

    clicks: dict[tuple[str, int], tuple[int, set[str]]] = field(default_factory=dict)
    ticks: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def add(self, event: trib.Event) -> None:
        window = int(event.event_time.seconds // 60 * 60_000)
        if event.HasField("ad_click"):
            key = (event.ad_click.advertiser_id, window)
            count, ips = self.clicks.get(key, (0, set()))
            ips.add(event.ad_click.ip_address)
            self.clicks[key] = (count + 1, ips)
        else:
            self.ticks.setdefault((f"{event.price_tick.pair}/{event.price_tick.source}", window), []).append(
                event.price_tick.price
            )

    def click_rows(self) -> dict[tuple[str, int], tuple[int, int]]:
        return {k: (count, len(ips)) for k, (count, ips) in self.clicks.items()}

    def tick_rows(self) -> dict[tuple[str, int], tuple[int, float, float, float]]:
        return {k: (len(p), min(p), max(p), sum(p)) for k, p in self.ticks.items()}


def window_ms(aggregate: trib.Aggregate) -> int:
    return int(aggregate.window_start.seconds * 1000 + aggregate.window_start.nanos // 1_000_000)


async def stored(
    client: trib.Client, start: datetime.datetime, end: datetime.datetime
) -> tuple[dict[tuple[str, int], tuple[int, int]], dict[tuple[str, int], tuple[int, float, float, float]]]:
    clicks = {
        (a.key, window_ms(a)): (a.count, a.distinct_count)
        async for a in client.aggregates("ad_click", start, end, page_size=7)
    }
    ticks = {
        (a.key, window_ms(a)): (a.count, a.min, a.max, a.sum)
        async for a in client.aggregates("price_tick", start, end, page_size=7)
    }
    return clicks, ticks


def expected_accuracy(
    ticks: dict[tuple[str, int], tuple[int, float, float, float]],
) -> dict[tuple[str, str, int], float]:
    """(pair, source, window) -> percent difference of the source's average
    from the mean of the other sources' averages in that window."""
    averages: dict[tuple[str, int], dict[str, float]] = {}
    for (key, window), (count, _, _, total) in ticks.items():
        pair, source = key.split("/")
        averages.setdefault((pair, window), {})[source] = total / count
    want = {}
    for (pair, window), by_source in averages.items():
        for source, average in by_source.items():
            others = [a for s, a in by_source.items() if s != source]
            if others:
                mean = sum(others) / len(others)
                want[(pair, source, window)] = 100 * (average - mean) / mean
    return want


def differences(want: dict, got: dict) -> list[str]:  # type: ignore[type-arg]
    diff = [f"{k}: want {v}, got {got.get(k)}" for k, v in sorted(want.items()) if got.get(k) != v]
    diff += [f"{k}: unexpected {v}" for k, v in sorted(got.items()) if k not in want]
    return diff


async def run(args: argparse.Namespace) -> int:
    now = datetime.datetime.now(UTC)
    # Four whole windows that ended a minute or more ago.
    base = now.replace(second=0, microsecond=0) - (WINDOWS + 1) * MINUTE
    planned = workload(args.events, base)
    problems: list[str] = []

    client = await trib.connect(args.url, api_key=args.api_key, ca=args.ca, timeout=10)
    async with client:
        acked = 0

        def progress(answer: asyncio.Future[trib.EventAck]) -> None:
            nonlocal acked
            if not answer.cancelled() and answer.exception() is None:
                acked += 1
                if acked % args.progress_every == 0:
                    print(f"acked {acked}", flush=True)

        sender = client.sender(window=args.window, give_up_after=60)
        started = time.monotonic()
        answers = []
        async with sender:
            for item in planned:
                answer = await sender.send(item.event)
                answer.add_done_callback(progress)
                answers.append(answer)
        send_seconds = time.monotonic() - started
        print(f"all answered: acked {sender.acked}, rejected {sender.rejected}", flush=True)

        truth = Truth()
        rejected_fields: Counter[str] = Counter()
        for item, answer in zip(planned, answers):
            error = answer.exception()
            key = item.event.idempotency_key
            if error is None:
                if item.invalid_field is not None:
                    problems.append(f"{key}: acknowledged, but should have been refused naming {item.invalid_field}")
                truth.add(item.event)
            elif isinstance(error, trib.EventRejected):
                rejected_fields[error.field] += 1
                if item.invalid_field is None:
                    problems.append(f"{key}: refused: {error!r}")
                elif error.field != item.invalid_field or error.code != "INVALID_ARGUMENT":
                    problems.append(f"{key}: refused {error!r}, expected field {item.invalid_field}")
            else:
                problems.append(f"{key}: failed: {error!r}")

        want_clicks, want_ticks = truth.click_rows(), truth.tick_rows()
        end = base + (WINDOWS + 1) * MINUTE
        deadline = time.monotonic() + args.timeout
        polled = time.monotonic()
        polls = 0
        while True:
            polls += 1
            try:
                got_clicks, got_ticks = await stored(client, base - MINUTE, end)
            except trib.TributaryError as error:
                print(f"query failed: {error!r}", flush=True)
                got_clicks, got_ticks = {}, {}
            exact = got_clicks == want_clicks and got_ticks == want_ticks
            if exact or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        converge_seconds = time.monotonic() - polled
        if not exact:
            diff = differences(want_clicks, got_clicks) + differences(want_ticks, got_ticks)
            problems.append(f"aggregates not exact after {args.timeout} s ({len(diff)} rows differ): {diff[:10]}")

        # GetPriceAccuracy over the same windows, against the same truth.
        accuracy = await client.price_accuracy(base, end, pairs=PAIRS)
        want_accuracy = expected_accuracy(want_ticks)
        got_accuracy = {(a.pair, a.source, a.window_start.seconds * 1000): a.percent_difference for a in accuracy}
        if set(got_accuracy) != set(want_accuracy) or any(
            abs(got_accuracy[k] - v) > 1e-9 * max(1.0, abs(v)) for k, v in want_accuracy.items()
        ):
            problems.append(f"price accuracy differs: want {sorted(want_accuracy.items())[:4]}, got {sorted(got_accuracy.items())[:4]}")

        summary = {
            "events": len(planned),
            "acked": sender.acked,
            "rejected": sender.rejected,
            "rejected_fields": dict(rejected_fields),
            "reconnects": sender.reconnects,
            "resent": sender.resent,
            "click_rows": len(want_clicks),
            "tick_rows": len(want_ticks),
            "accuracy_rows": len(got_accuracy),
            "exact": exact,
            "polls": polls,
            "send_seconds": round(send_seconds, 2),
            "converge_seconds": round(converge_seconds, 2),
            "problems": problems[:20],
        }
        print(json.dumps({"summary": summary}), flush=True)
    return 0 if not problems else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=trib.DEFAULT_URL)
    parser.add_argument("--api-key")
    parser.add_argument("--ca", help="PEM file of a private CA (https://)")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--progress-every", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for exact aggregates")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
