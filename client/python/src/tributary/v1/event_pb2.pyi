import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_type", "key", "event_time", "idempotency_key", "ad_click", "price_tick", "generic", "extra_fields")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    AD_CLICK_FIELD_NUMBER: _ClassVar[int]
    PRICE_TICK_FIELD_NUMBER: _ClassVar[int]
    GENERIC_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELDS_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    key: str
    event_time: _timestamp_pb2.Timestamp
    idempotency_key: str
    ad_click: AdClick
    price_tick: PriceTick
    generic: _struct_pb2.Struct
    extra_fields: _struct_pb2.Struct
    def __init__(self, event_type: _Optional[str] = ..., key: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., ad_click: _Optional[_Union[AdClick, _Mapping]] = ..., price_tick: _Optional[_Union[PriceTick, _Mapping]] = ..., generic: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., extra_fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class AdClick(_message.Message):
    __slots__ = ("ip_address", "user_agent", "referring_url", "advertiser_id", "metadata", "campaign_id")
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    REFERRING_URL_FIELD_NUMBER: _ClassVar[int]
    ADVERTISER_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    ip_address: str
    user_agent: str
    referring_url: str
    advertiser_id: str
    metadata: _struct_pb2.Struct
    campaign_id: str
    def __init__(self, ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ..., referring_url: _Optional[str] = ..., advertiser_id: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., campaign_id: _Optional[str] = ...) -> None: ...

class PriceTick(_message.Message):
    __slots__ = ("pair", "source", "price", "volume")
    PAIR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    pair: str
    source: str
    price: float
    volume: float
    def __init__(self, pair: _Optional[str] = ..., source: _Optional[str] = ..., price: _Optional[float] = ..., volume: _Optional[float] = ...) -> None: ...
