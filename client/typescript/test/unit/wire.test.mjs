// SubmitEvents' wire format: events many to a message (at most 1024 events
// and 64 KiB, an event larger than that alone, in order), and every response
// read back as one result per event in index order (a one-event `result`,
// or `acked` runs and `errors` merged).
import assert from "node:assert/strict";
import { test } from "node:test";

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

import { EventSchema } from "../../dist/gen/tributary/v1/event_pb.js";
import {
  AckedEventsSchema,
  EventErrorCode,
  EventResultSchema,
  SubmitEventsRequestSchema,
  SubmitEventsResponseSchema,
} from "../../dist/gen/tributary/v1/ingest_pb.js";
import { encodeEvent, MAX_EVENTS_PER_MESSAGE, MAX_MESSAGE_BYTES, messages, results } from "../../dist/wire.js";

const event = (keyBytes, n = 0) => create(EventSchema, { key: "k".repeat(keyBytes), idempotencyKey: `e-${n}` });

/** What ingest reads from each message: its encoded size and its events. */
const decoded = (sent) =>
  sent.map((message) => {
    const bytes = toBinary(SubmitEventsRequestSchema, message);
    const request = fromBinary(SubmitEventsRequestSchema, bytes);
    assert.equal(request.event, undefined);
    return { size: bytes.length, events: request.events };
  });

test("queued events go many to a message under the size limit, in order, each once", () => {
  const events = Array.from({ length: 100 }, (_, n) => event(1000, n));
  const sent = decoded(messages(events.map(encodeEvent)));
  for (const { size } of sent) assert.ok(size <= MAX_MESSAGE_BYTES, `${size}`);
  const counts = sent.map((m) => m.events.length);
  assert.ok(counts.length >= 2 && counts[0] > 50, String(counts));
  // Filled up: the next event would not have fitted.
  assert.ok(sent[0].size + toBinary(EventSchema, events[0]).length + 3 > MAX_MESSAGE_BYTES);
  const keys = sent.flatMap((m) => m.events.map((e) => e.idempotencyKey));
  assert.deepEqual(
    keys,
    events.map((e) => e.idempotencyKey),
  );
  // Carried exactly as encoded.
  assert.deepEqual(
    sent.flatMap((m) => m.events),
    events,
  );
});

test("at most 1024 events go in one message", () => {
  const events = Array.from({ length: 2500 }, (_, n) => event(1, n));
  const sent = decoded(messages(events.map(encodeEvent)));
  assert.deepEqual(
    sent.map((m) => m.events.length),
    [MAX_EVENTS_PER_MESSAGE, MAX_EVENTS_PER_MESSAGE, 452],
  );
  assert.deepEqual(
    sent.flatMap((m) => m.events.map((e) => e.idempotencyKey)),
    events.map((e) => e.idempotencyKey),
  );
});

test("an event larger than the limit goes alone, and order is kept", () => {
  const sent = decoded(messages([event(10), event(20), event(MAX_MESSAGE_BYTES), event(30)].map(encodeEvent)));
  assert.deepEqual(
    sent.map((m) => m.events.map((e) => e.key.length)),
    [[10, 20], [MAX_MESSAGE_BYTES], [30]],
  );
  assert.ok(sent[1].size > MAX_MESSAGE_BYTES);
  assert.deepEqual(messages([]), []);
});

test("the limit is the encoded message's size", () => {
  const field = (e) => toBinary(SubmitEventsRequestSchema, create(SubmitEventsRequestSchema, { events: [e] })).length;
  const small = event(100);
  // The largest second event with which the message is exactly 64 KiB.
  let key = MAX_MESSAGE_BYTES - field(small);
  while (field(event(key)) + field(small) > MAX_MESSAGE_BYTES) key -= 1;
  assert.equal(field(event(key)) + field(small), MAX_MESSAGE_BYTES);
  const fits = decoded(messages([small, event(key)].map(encodeEvent)));
  assert.deepEqual(
    fits.map((m) => [m.events.length, m.size]),
    [[2, MAX_MESSAGE_BYTES]],
  );
  // One byte more and it goes in the next message.
  assert.deepEqual(
    decoded(messages([small, event(key + 1)].map(encodeEvent))).map((m) => m.events.length),
    [1, 1],
  );
});

const error = (index, code = EventErrorCode.INVALID_ARGUMENT) =>
  create(EventResultSchema, { index, outcome: { case: "error", value: { code, field: "ad_click.ip_address", message: "bad" } } });
const run = (firstIndex, topic, schemaId, partitions, offsets) =>
  create(AckedEventsSchema, { firstIndex, topic, schemaId, partitions, offsets });
const ack = (index, topic, schemaId, partition, offset) => ({ index, case: "ack", ack: { topic, partition, offset, schemaId } });
/** `results`' entries with errors reduced to their index and code. */
const plain = (list) => list.map((r) => (r.case === "error" ? { index: r.index, case: "error", code: r.error.code } : r));

test("acked runs and the errors between them read back one result per event, in index order", () => {
  // As it arrives: through the wire format.
  const response = fromBinary(
    SubmitEventsResponseSchema,
    toBinary(
      SubmitEventsResponseSchema,
      create(SubmitEventsResponseSchema, {
        acked: [
          run(7n, "clicks", 1, [0, 2], [10n, 4n]),
          run(10n, "clicks", 1, [1], [5n]),
          run(11n, "ticks", 2, [0], [3n]),
          run(14n, "ticks", 3, [0, 0], [4n, 5n]),
        ],
        errors: [error(13n, EventErrorCode.UNAVAILABLE), error(9n), error(12n)],
      }),
    ),
  );
  assert.deepEqual(plain(results(response)), [
    ack(7n, "clicks", 1, 0, 10n),
    ack(8n, "clicks", 1, 2, 4n),
    { index: 9n, case: "error", code: EventErrorCode.INVALID_ARGUMENT },
    ack(10n, "clicks", 1, 1, 5n),
    ack(11n, "ticks", 2, 0, 3n),
    { index: 12n, case: "error", code: EventErrorCode.INVALID_ARGUMENT },
    { index: 13n, case: "error", code: EventErrorCode.UNAVAILABLE },
    ack(14n, "ticks", 3, 0, 4n),
    ack(15n, "ticks", 3, 0, 5n),
  ]);
  assert.equal(results(create(SubmitEventsResponseSchema, { errors: [error(4n), error(3n)] }))[0].index, 3n);
});

test("a one-event response reads back as its result; an empty one as nothing", () => {
  const acked = create(EventResultSchema, {
    index: 0n,
    outcome: { case: "ack", value: { topic: "t", partition: 2, offset: 3n, schemaId: 1 } },
  });
  assert.deepEqual(results(create(SubmitEventsResponseSchema, { result: acked })), [ack(0n, "t", 1, 2, 3n)]);
  const refused = results(create(SubmitEventsResponseSchema, { result: error(3n) }));
  assert.deepEqual(plain(refused), [{ index: 3n, case: "error", code: EventErrorCode.INVALID_ARGUMENT }]);
  assert.equal(refused[0].error.field, "ad_click.ip_address");
  // A result with neither an ack nor an error has no outcome.
  assert.deepEqual(results(create(SubmitEventsResponseSchema, { result: { index: 5n } })), [{ index: 5n, case: undefined }]);
  assert.deepEqual(results(create(SubmitEventsResponseSchema)), []);
});
