"""The SDK's exceptions. Every one is a :class:`TributaryError` with a
``code``, a ``field`` (empty when the error is not about one field) and a
``message``."""

from __future__ import annotations

import re

import grpc

from tributary.v1 import ingest_pb2

__all__ = [
    "EventRejected",
    "GaveUp",
    "InvalidArgument",
    "SenderClosed",
    "StatusError",
    "TributaryError",
    "Unavailable",
    "from_rpc_error",
]

# `field: reason`, as ingest and the query API word a refusal: the field is
# a dotted path such as `ad_click.ip_address`, `page_size` or `extra_fields.x`.
_FIELD_MESSAGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[\d+\])*): (.+)$", re.S)


class TributaryError(Exception):
    """Anything the SDK fails with.

    ``code`` names the class of error (a gRPC status name such as
    ``UNAUTHENTICATED``, or for a refused event the ``EventErrorCode`` without
    its prefix, such as ``INVALID_ARGUMENT``), ``field`` the offending field's
    path (e.g. ``ad_click.ip_address``; empty when not about one field) and
    ``message`` the reason.
    """

    code: str
    field: str
    message: str

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(code, field, message)
        self.code = code
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, field={self.field!r}, message={self.message!r})"


class EventRejected(TributaryError):
    """Ingest refused one event (invalid, unknown type, schema mismatch, too
    large); it was not stored and sending it again would fail again. The
    stream goes on."""

    @classmethod
    def from_proto(cls, error: ingest_pb2.EventError) -> EventRejected:
        """The exception for an ``EventError`` of a stream or batch result."""
        name = ingest_pb2.EventErrorCode.Name(error.code) if error.code in _EVENT_CODES else str(error.code)
        return cls(name.removeprefix("EVENT_ERROR_CODE_"), error.field, error.message)


_EVENT_CODES = set(ingest_pb2.EventErrorCode.values())


class InvalidArgument(TributaryError, ValueError):
    """An event, a request or the client's settings could not be built from
    the given values; nothing was sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("INVALID_ARGUMENT", field, message)


class StatusError(TributaryError):
    """A call ended with a gRPC status that no retry fixes (e.g.
    UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT). ``status`` is the
    gRPC status code; ``field`` is parsed from a ``field: reason`` message."""

    status: grpc.StatusCode

    def __init__(self, status: grpc.StatusCode, details: str) -> None:
        field, message = split_field(details)
        super().__init__(status.name, field, message)
        self.status = status


class Unavailable(TributaryError):
    """The service at ``url`` could not be reached (nothing listening, TLS
    refused, connection lost) or answered UNAVAILABLE."""

    url: str

    def __init__(self, url: str, reason: str) -> None:
        super().__init__("UNAVAILABLE", "", f"cannot reach Tributary at {url}: {reason}")
        self.url = url


class GaveUp(TributaryError):
    """The sender kept reconnecting for ``give_up_after`` seconds without any
    event being answered, and failed the unanswered events. ``last`` is the
    last failure seen."""

    attempts: int
    last: str

    def __init__(self, url: str, attempts: int, seconds: float, last: str) -> None:
        super().__init__(
            "UNAVAILABLE",
            "",
            f"gave up after {attempts} attempts over {seconds:.1f} s without progress to stream to {url}: {last}",
        )
        self.attempts = attempts
        self.last = last


class SenderClosed(TributaryError):
    """The sender is closed (or failed) and takes no more events."""

    def __init__(self, message: str = "the sender is closed") -> None:
        super().__init__("CLOSED", "", message)


def split_field(details: str) -> tuple[str, str]:
    """``("field", "reason")`` of a ``field: reason`` message, or
    ``("", details)`` when it does not start with a field path."""
    match = _FIELD_MESSAGE.match(details)
    if match is None:
        return "", details
    return match.group(1), match.group(2)


def from_rpc_error(error: grpc.aio.AioRpcError, url: str) -> TributaryError:
    """The SDK's exception for a failed call to ``url``: :class:`Unavailable`
    for UNAVAILABLE (naming the address), :class:`StatusError` otherwise."""
    code = error.code()
    details = error.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(url, details or "UNAVAILABLE")
    return StatusError(code, details)
