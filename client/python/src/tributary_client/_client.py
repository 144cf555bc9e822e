"""Connecting to Tributary: :func:`connect` / :class:`Client` turn a URL, an
optional API key and an optional private CA into a gRPC channel (``grpc.aio``)
whose calls all carry ``authorization: Bearer <key>``; the streaming
:class:`~tributary_client.Sender`; and the query API."""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Sequence
from importlib import resources
from types import TracebackType
from typing import Any, Literal, Union

import grpc
from google.protobuf import duration_pb2

from tributary.v1 import ingest_pb2_grpc, query_pb2, query_pb2_grpc

from ._errors import InvalidArgument, Unavailable, from_rpc_error
from ._events import EventTime, timestamp
from ._sender import Sender

__all__ = ["DEFAULT_URL", "Client", "Order", "connect"]

#: The gRPC endpoint of the local stack (``dev/up``).
DEFAULT_URL = "http://127.0.0.1:50051"

#: The order of aggregates: window start ascending (the default) or descending.
Order = Literal["asc", "desc"]

_ORDERS = {"asc": query_pb2.AGGREGATE_ORDER_WINDOW_ASC, "desc": query_pb2.AGGREGATE_ORDER_WINDOW_DESC}

#: A PEM CA: its bytes, or the path of a file holding it.
CA = Union[bytes, str, "os.PathLike[str]"]


def _channel_options(server_name: str | None) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        # The channel reconnects by itself between the sender's attempts;
        # grpc's default backoff grows to 120 s, which would outlast the
        # sender's own (100 ms doubling to 5 s).
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 5000),
        # Notice a dead connection (a killed ingest behind a proxy, a
        # dropped network) within seconds, as the Rust SDK does.
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # One subchannel per Client, not shared with other channels of the
        # process: closing one client never disturbs another.
        ("grpc.use_local_subchannel_pool", 1),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options


def _read_ca(ca: CA) -> bytes:
    if isinstance(ca, bytes):
        return ca
    text = os.fspath(ca)
    if text.lstrip().startswith("-----BEGIN"):
        return text.encode()
    with open(text, "rb") as file:
        return file.read()


def _trusted_roots(ca: bytes) -> bytes:
    """The public roots grpc trusts by default (the file named by
    ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``, else grpc's bundled ``roots.pem``)
    plus ``ca``: a private CA is trusted in addition to the public ones, as
    in the Rust SDK."""
    public = b""
    try:
        path = os.environ.get("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH")
        if path:
            with open(path, "rb") as file:
                public = file.read()
        else:
            public = (resources.files("grpc") / "_cython" / "_credentials" / "roots.pem").read_bytes()
    except (OSError, TypeError):
        pass
    return public.rstrip(b"\n") + b"\n" + ca if public else ca


def _target(url: str) -> tuple[str, bool]:
    """``host:port`` of ``url`` and whether it uses TLS."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https"):
        raise InvalidArgument("url", f"`{url}` must start with http:// or https://")
    if not parsed.hostname:
        raise InvalidArgument("url", f"`{url}` has no host")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise InvalidArgument("url", f"`{url}` must be scheme://host:port only")
    try:
        port = parsed.port
    except ValueError as error:
        raise InvalidArgument("url", f"`{url}`: {error}") from None
    tls = parsed.scheme == "https"
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    return f"{host}:{port or (443 if tls else 80)}", tls


class Client:
    """A connection to Tributary's gRPC endpoint (ingest and the query API at
    one address). Nothing is dialled until first use; :func:`connect` also
    waits until the endpoint answers. Use it from one event loop, and close
    it (``await client.close()`` or ``async with``).

    ``url`` is ``http://host:port`` or ``https://host:port``; ``api_key`` is
    sent as ``authorization: Bearer <key>`` on every call; ``ca`` (PEM
    bytes, or a file path) is a private CA trusted for ``https://`` in
    addition to the public roots; ``server_name`` is the name the server
    certificate must carry when it differs from the URL's host.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        ca: CA | None = None,
        server_name: str | None = None,
    ) -> None:
        self._url = url
        self._target, self._tls = _target(url)
        if ca is not None and not self._tls:
            raise InvalidArgument("ca", f"a CA is only used with https://, and `{url}` is plain http")
        if api_key is not None and (not api_key or not api_key.isascii() or not api_key.isprintable()):
            raise InvalidArgument("api_key", "must be non-empty printable ASCII")
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {api_key}"),) if api_key is not None else ()
        )
        self._credentials = (
            grpc.ssl_channel_credentials(_trusted_roots(_read_ca(ca)) if ca is not None else None)
            if self._tls
            else None
        )
        self._options = _channel_options(server_name)
        self._channel: grpc.aio.Channel | None = None
        self._ingest: ingest_pb2_grpc.IngestServiceStub | None = None
        self._query: query_pb2_grpc.QueryServiceStub | None = None

    @property
    def url(self) -> str:
        """The endpoint URL, as given."""
        return self._url

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata every call carries (the API key), for calls made
        through :attr:`ingest_stub` and :attr:`query_stub` directly."""
        return self._metadata

    @property
    def channel(self) -> grpc.aio.Channel:
        """The ``grpc.aio`` channel, created on first use (in the running loop)."""
        if self._channel is None:
            if self._credentials is not None:
                self._channel = grpc.aio.secure_channel(self._target, self._credentials, options=self._options)
            else:
                self._channel = grpc.aio.insecure_channel(self._target, options=self._options)
        return self._channel

    @property
    def ingest_stub(self) -> ingest_pb2_grpc.IngestServiceStub:
        """The generated ``IngestService`` stub (pass ``metadata=client.metadata``)."""
        if self._ingest is None:
            self._ingest = ingest_pb2_grpc.IngestServiceStub(self.channel)
        return self._ingest

    @property
    def query_stub(self) -> query_pb2_grpc.QueryServiceStub:
        """The generated ``QueryService`` stub (pass ``metadata=client.metadata``)."""
        if self._query is None:
            self._query = query_pb2_grpc.QueryServiceStub(self.channel)
        return self._query

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Waits until the endpoint accepts a connection; raises
        :class:`Unavailable` naming the address after ``timeout`` seconds."""
        channel = self.channel
        # Polled rather than awaited with channel_ready(): a connectivity
        # watch left pending by a timeout would complete later on a loop
        # that may be closed by then (grpc.aio logs "Event loop is closed").
        deadline = time.monotonic() + timeout
        while channel.get_state(try_to_connect=True) != grpc.ChannelConnectivity.READY:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        else:
            return
        # Ask once without waiting, for grpc's reason (connection refused,
        # certificate not trusted, ...).
        reason = f"no connection within {timeout:g} s"
        try:
            await self.query_stub.GetAggregates(query_pb2.GetAggregatesRequest(), metadata=self._metadata, timeout=2)
            return  # it answered after all
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                reason = f"{reason}: {error.details()}"
            elif error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                return  # it answered after all (with a refusal of the empty query)
        except asyncio.TimeoutError:
            pass
        raise Unavailable(self._url, reason)

    def sender(
        self,
        *,
        window: int = 1024,
        give_up_after: float = 60.0,
        first_connect_timeout: float = 5.0,
        initial_backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> Sender:
        """A streaming :class:`Sender` on this connection: at most ``window``
        events unanswered; reconnects with backoff (``initial_backoff``
        doubling to ``max_backoff``, jittered) and resends unanswered events
        when the stream fails; gives up after ``give_up_after`` seconds
        without progress, or after ``first_connect_timeout`` when it never
        reached ingest."""
        return Sender(
            self,
            window=window,
            give_up_after=give_up_after,
            first_connect_timeout=first_connect_timeout,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
        )

    async def aggregates(
        self,
        event_type: str,
        start: EventTime,
        end: EventTime,
        *,
        keys: Iterable[str] = (),
        granularity: _dt.timedelta | None = None,
        order: Order = "asc",
        page_size: int | None = None,
        timeout: float | None = 30.0,
    ) -> AsyncIterator[query_pb2.Aggregate]:
        """Every aggregate of ``event_type`` whose bucket starts in
        ``[start, end)``, following page tokens: an async iterator of
        ``Aggregate`` messages. ``keys`` limits the group keys (advertiser
        ids, ``pair/source``); ``granularity`` is a multiple of the
        processor's window (default: the window); ``timeout`` bounds each
        page's call. Raises :class:`StatusError` for a bad parameter (with
        its ``field``) and :class:`Unavailable` when unreachable."""
        request = query_pb2.GetAggregatesRequest(event_type=event_type, keys=list(keys))
        request.start_time.CopyFrom(timestamp(start, "start_time"))
        request.end_time.CopyFrom(timestamp(end, "end_time"))
        if granularity is not None:
            request.granularity.CopyFrom(_duration(granularity))
        if order not in _ORDERS:
            raise InvalidArgument("order", f"must be 'asc' or 'desc', not {order!r}")
        request.order = _ORDERS[order]
        if page_size is not None:
            request.page_size = page_size
        while True:
            try:
                page = await self.query_stub.GetAggregates(request, metadata=self._metadata, timeout=timeout)
            except grpc.aio.AioRpcError as error:
                raise from_rpc_error(error, self._url) from None
            for aggregate in page.aggregates:
                yield aggregate
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def price_accuracy(
        self,
        start: EventTime,
        end: EventTime,
        *,
        pairs: Iterable[str] = (),
        granularity: _dt.timedelta | None = None,
        timeout: float | None = 30.0,
    ) -> Sequence[query_pb2.PriceAccuracy]:
        """Per pair, bucket and source in ``[start, end)``: how far the
        source's average price is from the mean of the other sources."""
        request = query_pb2.GetPriceAccuracyRequest(pairs=list(pairs))
        request.start_time.CopyFrom(timestamp(start, "start_time"))
        request.end_time.CopyFrom(timestamp(end, "end_time"))
        if granularity is not None:
            request.granularity.CopyFrom(_duration(granularity))
        try:
            response = await self.query_stub.GetPriceAccuracy(request, metadata=self._metadata, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error, self._url) from None
        return list(response.accuracy)

    async def close(self) -> None:
        """Closes the channel (calls still running are cancelled)."""
        if self._channel is not None:
            channel, self._channel = self._channel, None
            self._ingest = self._query = None
            await channel.close(grace=None)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Client({self._url!r})"


def _duration(value: _dt.timedelta) -> duration_pb2.Duration:
    if not isinstance(value, _dt.timedelta):
        raise InvalidArgument("granularity", f"must be a timedelta, not {type(value).__name__}")
    duration = duration_pb2.Duration()
    duration.FromTimedelta(value)
    return duration


async def connect(
    url: str = DEFAULT_URL,
    *,
    api_key: str | None = None,
    ca: CA | None = None,
    server_name: str | None = None,
    timeout: float = 5.0,
) -> Client:
    """A :class:`Client` for ``url`` once its endpoint accepts a connection;
    raises :class:`Unavailable` naming the address when nothing answers
    within ``timeout`` seconds (a stopped stack fails fast).

    >>> async def main() -> None:  # doctest: +SKIP
    ...     async with await connect("http://127.0.0.1:50051", api_key="secret") as client:
    ...         ...
    """
    client = Client(url, api_key=api_key, ca=ca, server_name=server_name)
    try:
        await client.wait_ready(timeout)
    except BaseException:
        await client.close()
        raise
    return client
