"""A grpcio client that streams the events it reads and prints every answer.

Usage: PYTHONPATH=<generated stubs> python3 send.py ADDRESS < events.jsonl

Each input line is one ad click: {"event_time_ms", "idempotency_key",
"ad_click": {ip_address, user_agent, referring_url, advertiser_id}}. All of
them go through one SubmitEvents call (grpcio pulls the request iterator as
fast as HTTP/2 flow control lets it). Prints one JSON line per answer, in
order: {"ack": {"partition", "offset"}} or {"error": {"code", "field",
"message"}}, then {"status": "OK"} (or the call's error). Exit 0 when the
call ended OK.
"""
import json
import sys

import grpc
from google.protobuf import timestamp_pb2

from tributary.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc


def requests(lines):
    for line in lines:
        event = json.loads(line)
        ms = event["event_time_ms"]
        stamp = timestamp_pb2.Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)
        yield ingest_pb2.SubmitEventsRequest(
            event=event_pb2.Event(
                event_time=stamp,
                idempotency_key=event["idempotency_key"],
                ad_click=event_pb2.AdClick(**event["ad_click"]),
            )
        )


def main(address):
    lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
    status = "OK"
    with grpc.insecure_channel(address) as channel:
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        try:
            for response in ingest.SubmitEvents(requests(lines)):
                result = response.result
                if result.HasField("ack"):
                    answer = {"ack": {"partition": result.ack.partition, "offset": result.ack.offset}}
                else:
                    answer = {
                        "error": {
                            "code": result.error.code,
                            "field": result.error.field,
                            "message": result.error.message,
                        }
                    }
                print(json.dumps(answer), flush=True)
        except grpc.RpcError as error:
            status = f"{error.code().name}: {error.details()}"
    print(json.dumps({"status": status}), flush=True)
    return 0 if status == "OK" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
