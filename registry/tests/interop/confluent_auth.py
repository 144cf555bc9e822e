"""Interop check: the confluent-kafka Python client against a Tributary
registry with TLS and basic authentication.

Usage: python3 confluent_auth.py REGISTRY_URL CA_PEM USER:PASSWORD

Authenticates with `basic.auth.user.info`, trusts the private CA with
`ssl.ca.location`, registers and fetches a schema, then checks that a wrong
password is refused with error code 40101. Exits non-zero (with the reason)
on any mismatch.
"""
import sys

try:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError
except ImportError as missing:
    sys.exit(f"{missing}: install registry/tests/interop/requirements.txt with pip")

BEAT = '{"type": "record", "name": "Beat", "namespace": "tributary.test", "fields": [{"name": "n", "type": "long"}]}'


def check(condition, message):
    if not condition:
        sys.exit(f"check failed: {message}")


def main(url, ca, user_info):
    client = SchemaRegistryClient(
        {"url": url, "ssl.ca.location": ca, "basic.auth.user.info": user_info}
    )
    schema_id = client.register_schema("beats-value", Schema(BEAT, "AVRO"))
    fetched = client.get_schema(schema_id)
    check('"Beat"' in fetched.schema_str, f"fetched schema is Beat: {fetched.schema_str}")
    check(client.get_subjects() == ["beats-value"], "one subject")

    user = user_info.split(":", 1)[0]
    intruder = SchemaRegistryClient(
        {"url": url, "ssl.ca.location": ca, "basic.auth.user.info": f"{user}:wrong"}
    )
    try:
        intruder.get_subjects()
    except SchemaRegistryError as refused:
        check(refused.http_status_code == 401, f"HTTP 401, got {refused.http_status_code}")
        check(refused.error_code == 40101, f"error code 40101, got {refused.error_code}")
    else:
        sys.exit("check failed: a wrong password was let in")
    print("authenticated ok")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3])
