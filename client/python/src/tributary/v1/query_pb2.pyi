import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AggregateOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATE_ORDER_UNSPECIFIED: _ClassVar[AggregateOrder]
    AGGREGATE_ORDER_WINDOW_ASC: _ClassVar[AggregateOrder]
    AGGREGATE_ORDER_WINDOW_DESC: _ClassVar[AggregateOrder]
AGGREGATE_ORDER_UNSPECIFIED: AggregateOrder
AGGREGATE_ORDER_WINDOW_ASC: AggregateOrder
AGGREGATE_ORDER_WINDOW_DESC: AggregateOrder

class GetAggregatesRequest(_message.Message):
    __slots__ = ("event_type", "keys", "start_time", "end_time", "granularity", "order", "page_size", "page_token")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    granularity: _duration_pb2.Duration
    order: AggregateOrder
    page_size: int
    page_token: str
    def __init__(self, event_type: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granularity: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., order: _Optional[_Union[AggregateOrder, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetAggregatesResponse(_message.Message):
    __slots__ = ("aggregates", "next_page_token")
    AGGREGATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    aggregates: _containers.RepeatedCompositeFieldContainer[Aggregate]
    next_page_token: str
    def __init__(self, aggregates: _Optional[_Iterable[_Union[Aggregate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Aggregate(_message.Message):
    __slots__ = ("event_type", "key", "window_start", "window_end", "count", "distinct_count", "min", "max", "sum", "avg", "last", "revisions")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_COUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    AVG_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    key: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    count: int
    distinct_count: int
    min: float
    max: float
    sum: float
    avg: float
    last: float
    revisions: int
    def __init__(self, event_type: _Optional[str] = ..., key: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., count: _Optional[int] = ..., distinct_count: _Optional[int] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., sum: _Optional[float] = ..., avg: _Optional[float] = ..., last: _Optional[float] = ..., revisions: _Optional[int] = ...) -> None: ...

class GetPriceAccuracyRequest(_message.Message):
    __slots__ = ("pairs", "start_time", "end_time", "granularity")
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    pairs: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    granularity: _duration_pb2.Duration
    def __init__(self, pairs: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granularity: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetPriceAccuracyResponse(_message.Message):
    __slots__ = ("accuracy",)
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    accuracy: _containers.RepeatedCompositeFieldContainer[PriceAccuracy]
    def __init__(self, accuracy: _Optional[_Iterable[_Union[PriceAccuracy, _Mapping]]] = ...) -> None: ...

class PriceAccuracy(_message.Message):
    __slots__ = ("pair", "source", "window_start", "source_avg", "others_mean", "percent_difference")
    PAIR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    SOURCE_AVG_FIELD_NUMBER: _ClassVar[int]
    OTHERS_MEAN_FIELD_NUMBER: _ClassVar[int]
    PERCENT_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    pair: str
    source: str
    window_start: _timestamp_pb2.Timestamp
    source_avg: float
    others_mean: float
    percent_difference: float
    def __init__(self, pair: _Optional[str] = ..., source: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_avg: _Optional[float] = ..., others_mean: _Optional[float] = ..., percent_difference: _Optional[float] = ...) -> None: ...
