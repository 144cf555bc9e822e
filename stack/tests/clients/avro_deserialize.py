"""Reads records of one topic at given offsets and decodes them with
Confluent's AvroDeserializer (writer schema fetched from the registry by the
id in each record's Confluent header), printing one JSON line per record.

Usage: python3 avro_deserialize.py BOOTSTRAP REGISTRY_URL TOPIC PARTITION:OFFSET...

Set REGISTRY_BASIC_AUTH=USER:PASSWORD in the environment when the registry
needs credentials. Each output line is
{"partition": P, "offset": O, "schema_id": ID, "value": {...}}, with
timestamp-millis fields as epoch milliseconds. Exits non-zero (with the
reason on stderr) when a record cannot be read or decoded within the time
limit.
"""
import datetime
import json
import os
import sys
import time

try:
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext
except ImportError as missing:
    sys.exit(f"{missing}: install registry/tests/interop/requirements.txt with pip")

TIME_LIMIT_S = 60


def plain(value):
    """The decoded value with datetimes as epoch milliseconds (JSON-ready)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return int(round(value.timestamp() * 1000))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main(bootstrap, registry_url, topic, wanted):
    registry_conf = {"url": registry_url}
    if os.environ.get("REGISTRY_BASIC_AUTH"):
        registry_conf["basic.auth.user.info"] = os.environ["REGISTRY_BASIC_AUTH"]
    deserializer = AvroDeserializer(SchemaRegistryClient(registry_conf))
    context = SerializationContext(topic, MessageField.VALUE)

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            # Required by the client; no group is joined (assign, no commits).
            "group.id": "tributary-avro-deserialize-test",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    # Per partition, read from the lowest offset asked for.
    start = {}
    for partition, offset in wanted:
        start[partition] = min(offset, start.get(partition, offset))
    consumer.assign([TopicPartition(topic, p, o) for p, o in sorted(start.items())])

    missing = set(wanted)
    deadline = time.monotonic() + TIME_LIMIT_S
    try:
        while missing and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            key = (message.partition(), message.offset())
            if key not in missing:
                continue
            missing.discard(key)
            payload = message.value()
            if payload is None or len(payload) < 5 or payload[0] != 0:
                sys.exit(f"record {key} is not in the Confluent wire format: {payload!r}")
            schema_id = int.from_bytes(payload[1:5], "big")
            value = deserializer(payload, context)
            print(
                json.dumps(
                    {
                        "partition": key[0],
                        "offset": key[1],
                        "schema_id": schema_id,
                        "value": plain(value),
                    }
                ),
                flush=True,
            )
    finally:
        consumer.close()
    if missing:
        sys.exit(f"records not read within {TIME_LIMIT_S} s: {sorted(missing)}")


def parse_offset(arg):
    partition, offset = arg.split(":")
    return int(partition), int(offset)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit("usage: avro_deserialize.py BOOTSTRAP REGISTRY_URL TOPIC PARTITION:OFFSET...")
    main(sys.argv[1], sys.argv[2], sys.argv[3], [parse_offset(a) for a in sys.argv[4:]])
