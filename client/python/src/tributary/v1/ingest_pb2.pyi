from tributary.v1 import event_pb2 as _event_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_ERROR_CODE_UNSPECIFIED: _ClassVar[EventErrorCode]
    EVENT_ERROR_CODE_INVALID_ARGUMENT: _ClassVar[EventErrorCode]
    EVENT_ERROR_CODE_UNKNOWN_EVENT_TYPE: _ClassVar[EventErrorCode]
    EVENT_ERROR_CODE_SCHEMA_MISMATCH: _ClassVar[EventErrorCode]
    EVENT_ERROR_CODE_TOO_LARGE: _ClassVar[EventErrorCode]
    EVENT_ERROR_CODE_UNAVAILABLE: _ClassVar[EventErrorCode]
    EVENT_ERROR_CODE_INTERNAL: _ClassVar[EventErrorCode]
EVENT_ERROR_CODE_UNSPECIFIED: EventErrorCode
EVENT_ERROR_CODE_INVALID_ARGUMENT: EventErrorCode
EVENT_ERROR_CODE_UNKNOWN_EVENT_TYPE: EventErrorCode
EVENT_ERROR_CODE_SCHEMA_MISMATCH: EventErrorCode
EVENT_ERROR_CODE_TOO_LARGE: EventErrorCode
EVENT_ERROR_CODE_UNAVAILABLE: EventErrorCode
EVENT_ERROR_CODE_INTERNAL: EventErrorCode

class SubmitEventsRequest(_message.Message):
    __slots__ = ("event", "events")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    def __init__(self, event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ..., events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ...) -> None: ...

class SubmitEventsResponse(_message.Message):
    __slots__ = ("result", "acked", "errors")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ACKED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    result: EventResult
    acked: _containers.RepeatedCompositeFieldContainer[AckedEvents]
    errors: _containers.RepeatedCompositeFieldContainer[EventResult]
    def __init__(self, result: _Optional[_Union[EventResult, _Mapping]] = ..., acked: _Optional[_Iterable[_Union[AckedEvents, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ...) -> None: ...

class AckedEvents(_message.Message):
    __slots__ = ("first_index", "topic", "schema_id", "partitions", "offsets")
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    OFFSETS_FIELD_NUMBER: _ClassVar[int]
    first_index: int
    topic: str
    schema_id: int
    partitions: _containers.RepeatedScalarFieldContainer[int]
    offsets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, first_index: _Optional[int] = ..., topic: _Optional[str] = ..., schema_id: _Optional[int] = ..., partitions: _Optional[_Iterable[int]] = ..., offsets: _Optional[_Iterable[int]] = ...) -> None: ...

class SubmitEventRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    def __init__(self, event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ...) -> None: ...

class SubmitEventResponse(_message.Message):
    __slots__ = ("ack",)
    ACK_FIELD_NUMBER: _ClassVar[int]
    ack: EventAck
    def __init__(self, ack: _Optional[_Union[EventAck, _Mapping]] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EventResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ...) -> None: ...

class EventResult(_message.Message):
    __slots__ = ("index", "ack", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    ack: EventAck
    error: EventError
    def __init__(self, index: _Optional[int] = ..., ack: _Optional[_Union[EventAck, _Mapping]] = ..., error: _Optional[_Union[EventError, _Mapping]] = ...) -> None: ...

class EventAck(_message.Message):
    __slots__ = ("topic", "partition", "offset", "schema_id")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_ID_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    offset: int
    schema_id: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., schema_id: _Optional[int] = ...) -> None: ...

class EventError(_message.Message):
    __slots__ = ("code", "field", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: EventErrorCode
    field: str
    message: str
    def __init__(self, code: _Optional[_Union[EventErrorCode, str]] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
