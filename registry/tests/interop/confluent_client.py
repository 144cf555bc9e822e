"""Interop check: the confluent-kafka Python client against a Tributary registry.

Usage: python3 confluent_client.py REGISTRY_URL

Registers a schema with SchemaRegistryClient, fetches it back by id and by
latest version, and round-trips a record through AvroSerializer and
AvroDeserializer. Exits non-zero (with the reason) on any mismatch.
"""
import sys

try:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext
except ImportError as missing:
    sys.exit(f"{missing}: install registry/tests/interop/requirements.txt with pip")

CLICK = """
{"type": "record", "name": "Click", "namespace": "tributary.test",
 "fields": [
   {"name": "ip_address", "type": "string"},
   {"name": "advertiser_id", "type": "long"},
   {"name": "referrer", "type": ["null", "string"], "default": null}
 ]}
"""


def check(condition, message):
    if not condition:
        sys.exit(f"check failed: {message}")


def main(url):
    client = SchemaRegistryClient({"url": url})
    schema_id = client.register_schema("clicks-value", Schema(CLICK, "AVRO"))
    check(schema_id == 1, f"first id is 1, got {schema_id}")
    check(client.register_schema("clicks-value", Schema(CLICK, "AVRO")) == schema_id, "re-registration keeps the id")

    fetched = client.get_schema(schema_id)
    check(fetched.schema_type == "AVRO", f"schema type AVRO, got {fetched.schema_type}")
    check('"Click"' in fetched.schema_str, f"fetched schema is the Click record: {fetched.schema_str}")

    latest = client.get_latest_version("clicks-value")
    check(latest.schema_id == schema_id and latest.version == 1, f"latest is id {schema_id} v1: {latest}")
    check(client.get_subjects() == ["clicks-value"], "one subject")
    check(client.get_versions("clicks-value") == [1], "one version")
    looked_up = client.lookup_schema("clicks-value", Schema(CLICK, "AVRO"))
    check(looked_up.schema_id == schema_id, f"lookup finds id {schema_id}: {looked_up}")
    check(client.test_compatibility("clicks-value", Schema(CLICK, "AVRO")), "schema is compatible with itself")

    serializer = AvroSerializer(client, CLICK, conf={"auto.register.schemas": False, "use.latest.version": True})
    deserializer = AvroDeserializer(client)
    context = SerializationContext("clicks", MessageField.VALUE)
    record = {"ip_address": "192.0.2.1", "advertiser_id": 42, "referrer": "https://example.com/"}
    payload = serializer(record, context)
    check(payload[:5] == b"\x00\x00\x00\x00\x01", f"Confluent wire format with id 1: {payload[:5]!r}")
    decoded = deserializer(payload, context)
    check(decoded == record, f"round trip returns the record: {decoded}")
    print("round trip ok")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: confluent_client.py REGISTRY_URL")
    main(sys.argv[1])
