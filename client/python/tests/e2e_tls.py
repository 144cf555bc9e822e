#!/usr/bin/env python3
"""The Python SDK over TLS with an API key, against a real ingest with both
(driven by stack/tests/sdk_python.rs):

- with the CA and the key, the sync client streams ten clicks (one invalid)
  and gets nine acks and a refusal naming the field, and queries aggregates;
- with a wrong key, the sender fails its pending events at once with
  UNAUTHENTICATED (no retrying), and so does a query;
- without the CA, or in plain text, connecting fails naming the address.

Prints one JSON line {"summary": {...}}; exit 0 when all of that held.

    PYTHONPATH=client/python/src python3 client/python/tests/e2e_tls.py https://localhost:PORT CA.pem KEY
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
import time
import urllib.parse

import tributary_client as trib
from tributary_client import sync

UTC = datetime.timezone.utc


def clicks() -> list[trib.Event]:
    return [
        trib.ad_click("adv-tls", "not-an-ip" if i == 4 else f"192.0.2.{i}", "e2e-tls", "https://example.com/")
        for i in range(10)
    ]


async def wrong_key(url: str, ca: str) -> dict[str, object]:
    async with trib.Client(url, api_key="not-the-key", ca=ca) as client:
        sender = client.sender(give_up_after=30)
        started = time.monotonic()
        answers = [await sender.send(event) for event in clicks()]
        try:
            await sender.close()
            sender_code = "OK"
        except trib.TributaryError as error:
            sender_code = error.code
        seconds = time.monotonic() - started
        answer_codes = sorted({getattr(a.exception(), "code", "OK") for a in answers})
        now = datetime.datetime.now(UTC)
        try:
            _ = [a async for a in client.aggregates("ad_click", now - datetime.timedelta(hours=1), now)]
            query_code = "OK"
        except trib.TributaryError as error:
            query_code = error.code
    return {"sender": sender_code, "answers": answer_codes, "seconds": round(seconds, 2), "query": query_code}


def refused(url: str, **options: str) -> dict[str, object]:
    started = time.monotonic()
    try:
        sync.Client(url, connect_timeout=2.0, **options).close()
    except trib.Unavailable as error:
        return {"error": str(error), "names_url": url in str(error), "seconds": round(time.monotonic() - started, 2)}
    return {"error": None}


def main(url: str, ca: str, key: str) -> int:
    with sync.Client(url, api_key=key, ca=ca) as client:
        results = client.send_all(clicks())
        now = datetime.datetime.now(UTC)
        rows = client.aggregates("ad_click", now - datetime.timedelta(hours=1), now + datetime.timedelta(minutes=1))
    acked = sum(isinstance(r, trib.EventAck) for r in results)
    rejections = [f"{r.code} {r.field}" for r in results if isinstance(r, trib.EventRejected)]
    plain = urllib.parse.urlsplit(url)._replace(scheme="http").geturl()
    summary = {
        "acked": acked,
        "rejections": rejections,
        "topics": sorted({r.topic for r in results if isinstance(r, trib.EventAck)}),
        "query_rows": len(rows),
        "wrong_key": asyncio.run(wrong_key(url, ca)),
        "without_ca": refused(url, api_key=key),
        "plain_text": refused(plain, api_key=key),
    }
    print(json.dumps({"summary": summary}), flush=True)
    ok = (
        acked == 9
        and rejections == ["INVALID_ARGUMENT ad_click.ip_address"]
        and summary["wrong_key"]["sender"] == "UNAUTHENTICATED"  # type: ignore[index]
        and summary["wrong_key"]["query"] == "UNAUTHENTICATED"  # type: ignore[index]
        and summary["without_ca"]["error"] is not None  # type: ignore[index]
        and summary["plain_text"]["error"] is not None  # type: ignore[index]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
