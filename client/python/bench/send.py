"""Measures the Python SDK's sender: COUNT ad clicks through one stream.

Usage: PYTHONPATH=client/python/src python3 client/python/bench/send.py URL COUNT WINDOW

Builds the events first (untimed), then sends them through one
`client.sender(window=WINDOW)` as fast as its window lets it, and waits for
every answer. Prints one JSON line: ok, errors, seconds (first send to last
answer), cpu_seconds (this process's user + system CPU over that time) and
the first error. Run by `dev/bench` (the SDK stage), beside the Rust SDK.
"""
import asyncio
import json
import resource
import sys
import time

import tributary_client


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(url: str, count: int, window: int) -> int:
    events = [
        tributary_client.ad_click(
            f"bench-py-{i % 100}",
            f"10.{i % 250}.{(i // 250) % 250}.1",
            "bench/python",
            f"https://example.com/landing/{i}",
        )
        for i in range(count)
    ]
    ok = errors = 0
    first_error = None
    async with await tributary_client.connect(url) as client:
        started, cpu_started = time.monotonic(), cpu_seconds()
        async with client.sender(window=window) as sender:
            answers = [await sender.send(event) for event in events]
            for answer in answers:
                try:
                    await answer
                    ok += 1
                except tributary_client.TributaryError as error:
                    errors += 1
                    first_error = first_error or str(error)
        seconds, cpu = time.monotonic() - started, cpu_seconds() - cpu_started
    print(json.dumps({"ok": ok, "errors": errors, "seconds": seconds, "cpu_seconds": cpu, "first_error": first_error}))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
