"""Building events: typed builders for the built-in types (:func:`ad_click`,
:func:`price_tick`) and :func:`generic` events for schema-driven types.
Every builder stamps the event time (default: now) and an idempotency key
(default: a random UUID4), so the sender's resends are counted once."""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Mapping
from typing import Any, Union

from google.protobuf import struct_pb2, timestamp_pb2

from tributary.v1 import event_pb2

from ._errors import InvalidArgument

__all__ = ["EventTime", "ad_click", "generic", "price_tick", "timestamp"]

#: When an event happened: a timezone-aware datetime or a protobuf Timestamp.
EventTime = Union[_dt.datetime, timestamp_pb2.Timestamp]


def timestamp(at: EventTime, field: str = "event_time") -> timestamp_pb2.Timestamp:
    """The protobuf Timestamp of a timezone-aware ``datetime`` (a naive one
    is refused: it would silently mean the local time to some and UTC to
    others), or the Timestamp itself."""
    if isinstance(at, timestamp_pb2.Timestamp):
        return at
    if not isinstance(at, _dt.datetime):
        raise InvalidArgument(field, f"must be a datetime or a protobuf Timestamp, not {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidArgument(field, "must be timezone-aware (e.g. datetime.now(timezone.utc))")
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at.astimezone(_dt.timezone.utc))
    return stamp


def _struct(values: Mapping[str, Any], field: str) -> struct_pb2.Struct:
    if not isinstance(values, Mapping):
        raise InvalidArgument(field, f"must be a mapping of field names to JSON values, not {type(values).__name__}")
    _check_exact_numbers(values, field)
    struct = struct_pb2.Struct()
    try:
        struct.update(dict(values))
    except (ValueError, TypeError) as error:
        raise InvalidArgument(field, f"is not JSON-like: {error}") from None
    return struct


def _check_exact_numbers(value: Any, field: str) -> None:
    """A protobuf Struct holds numbers as doubles: an integer beyond 2^53
    would arrive rounded, so it is refused rather than changed."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            _check_exact_numbers(item, f"{field}.{name}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_exact_numbers(item, f"{field}[{i}]")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise InvalidArgument(
            field, f"{value} is beyond 2^53 and cannot travel exactly in a protobuf Struct (send it as a string)"
        )


def _event(
    event_type: str,
    key: str | None,
    event_time: EventTime | None,
    idempotency_key: str | None,
    fields: Mapping[str, Any] | None,
) -> event_pb2.Event:
    event = event_pb2.Event(
        event_type=event_type,
        key=key or "",
        idempotency_key=str(uuid.uuid4()) if idempotency_key is None else idempotency_key,
    )
    event.event_time.CopyFrom(timestamp(event_time) if event_time is not None else _now())
    if fields:
        event.extra_fields.CopyFrom(_struct(fields, "extra_fields"))
    return event


def _number(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(field, f"must be a number, not {type(value).__name__}")
    return float(value)


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def ad_click(
    advertiser_id: str,
    ip_address: str,
    user_agent: str,
    referring_url: str,
    *,
    event_time: EventTime | None = None,
    idempotency_key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    campaign_id: str | None = None,
    fields: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> event_pb2.Event:
    """An ``ad_click`` event, keyed by ``advertiser_id``.

    ``metadata`` is free-form JSON; ``campaign_id`` needs schema v2;
    ``fields`` are fields of a newer registered schema version that the
    message lacks (sent as ``extra_fields``, e.g. ``{"country": "DE"}`` once
    an ad_click v3 with ``country`` is registered). ``key`` may only be the
    advertiser id (the default).

    >>> event = ad_click("adv-1", "203.0.113.7", "curl/8", "https://example.com/", campaign_id="spring")
    >>> event.event_type, event.ad_click.campaign_id, len(event.idempotency_key)
    ('ad_click', 'spring', 36)
    """
    event = _event("ad_click", key, event_time, idempotency_key, fields)
    click = event.ad_click
    click.advertiser_id = advertiser_id
    click.ip_address = ip_address
    click.user_agent = user_agent
    click.referring_url = referring_url
    if metadata is not None:
        click.metadata.CopyFrom(_struct(metadata, "ad_click.metadata"))
    if campaign_id is not None:
        click.campaign_id = campaign_id
    return event


def price_tick(
    pair: str,
    source: str,
    price: float,
    *,
    volume: float | None = None,
    event_time: EventTime | None = None,
    idempotency_key: str | None = None,
    fields: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> event_pb2.Event:
    """A ``price_tick`` event, keyed by ``pair``; aggregated per
    ``pair/source``. ``volume`` needs schema v2; ``fields`` as for
    :func:`ad_click`.

    >>> event = price_tick("ETH-USD", "coinbase", 3012.5, volume=1.25, idempotency_key="t-1")
    >>> event.price_tick.price, event.price_tick.volume, event.idempotency_key
    (3012.5, 1.25, 't-1')
    """
    event = _event("price_tick", key, event_time, idempotency_key, fields)
    tick = event.price_tick
    tick.pair = pair
    tick.source = source
    tick.price = _number(price, "price_tick.price")
    if volume is not None:
        tick.volume = _number(volume, "price_tick.volume")
    return event


def generic(
    event_type: str,
    fields: Mapping[str, Any],
    *,
    key: str,
    event_time: EventTime | None = None,
    idempotency_key: str | None = None,
) -> event_pb2.Event:
    """An event of a schema-driven type: ``fields`` (a JSON-like mapping) is
    checked by ingest against the Avro schema versions registered for
    ``event_type``. ``key`` is the partitioning and aggregation key.

    >>> event = generic("signup", {"plan": "pro", "seats": 3}, key="user-7")
    >>> event.key, event.generic["plan"], event.generic["seats"]
    ('user-7', 'pro', 3.0)
    """
    event = _event(event_type, key, event_time, idempotency_key, None)
    event.generic.CopyFrom(_struct(fields, "generic"))
    return event
