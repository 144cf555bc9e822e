"""A grpcio client streaming one event per message as fast as it can.

Usage: PYTHONPATH=<generated stubs> python3 flood.py ADDRESS COUNT RUN_ID

Opens one SubmitEvents call and sends COUNT ad clicks (one per message,
idempotency keys RUN_ID-0 .. RUN_ID-<COUNT-1>, all stamped now), reading the
per-event answers as they come. grpcio pulls the request iterator only as
fast as HTTP/2 flow control lets it send, so this is the fastest a
well-behaved grpcio client goes. Prints one JSON line: acked, rejected, the
first rejection, and the call's final status. Exit 0 when every event was
acknowledged and the call ended OK.
"""
import json
import sys
import time

import grpc
from google.protobuf import timestamp_pb2

from tributary.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc


def requests(count, run_id):
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    for i in range(count):
        yield ingest_pb2.SubmitEventsRequest(
            event=event_pb2.Event(
                event_time=stamp,
                idempotency_key=f"{run_id}-{i}",
                ad_click=event_pb2.AdClick(
                    ip_address=f"10.{i % 250}.{(i // 250) % 250}.1",
                    user_agent="grpcio-flood",
                    referring_url="https://example.com/",
                    advertiser_id=f"{run_id}-adv-{i % 16}",
                ),
            )
        )


def main(address, count, run_id):
    acked = rejected = 0
    first_rejection = None
    status = "OK"
    started = time.monotonic()
    with grpc.insecure_channel(address) as channel:
        ingest = ingest_pb2_grpc.IngestServiceStub(channel)
        try:
            for response in ingest.SubmitEvents(requests(count, run_id)):
                if response.result.HasField("ack"):
                    acked += 1
                else:
                    rejected += 1
                    if first_rejection is None:
                        first_rejection = f"{response.result.error.field}: {response.result.error.message}"
        except grpc.RpcError as error:
            status = f"{error.code().name}: {error.details()}"
    print(json.dumps({
        "acked": acked,
        "rejected": rejected,
        "first_rejection": first_rejection,
        "status": status,
        "seconds": round(time.monotonic() - started, 2),
    }))
    return 0 if (acked, status) == (count, "OK") else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
