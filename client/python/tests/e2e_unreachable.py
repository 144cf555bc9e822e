#!/usr/bin/env python3
"""A stopped stack fails fast: connecting (async with the default timeout,
and sync) to URL, where nothing listens, raises Unavailable naming the
address within seconds.
Prints one JSON line per attempt: {"how", "seconds", "error", "url"}; exit 0
when both failed that way. Driven by stack/tests/sdk_python.rs.

    PYTHONPATH=client/python/src python3 client/python/tests/e2e_unreachable.py http://127.0.0.1:1
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable

import tributary_client as trib
from tributary_client import sync


def attempt(how: str, connect: Callable[[], object]) -> bool:
    started = time.monotonic()
    try:
        connect()
    except trib.Unavailable as error:
        print(json.dumps({"how": how, "seconds": time.monotonic() - started, "error": str(error), "url": error.url}))
        return True
    print(json.dumps({"how": how, "seconds": time.monotonic() - started, "error": None, "url": None}))
    return False


def main(url: str) -> int:
    ok = attempt("connect", lambda: asyncio.run(trib.connect(url)))  # the default: 5 s
    ok = attempt("sync.Client", lambda: sync.Client(url, connect_timeout=2.0)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
