"""Schemathesis hooks for Tributary's HTTP API: `POST /v1/events` also takes
NDJSON (one envelope per line), which Schemathesis cannot serialise alone."""
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    values = value if isinstance(value, list) else [value]
    return "".join(json.dumps(v) + "\n" for v in values).encode()
