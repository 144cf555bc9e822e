// The sender against a fake IngestService: resend after a failed stream
// (in order, with the original idempotency keys), per-event refusals,
// backpressure, giving up, statuses no retry can fix, and the wire format:
// queued events many to a message, answered compactly (runs and errors,
// possibly spread over several responses) or one result per response.
import assert from "node:assert/strict";
import { test } from "node:test";

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

import {
  ConnectionError,
  EventRejected,
  GaveUp,
  InvalidEvent,
  priceTick,
  Sender,
  SenderClosed,
  StatusError,
} from "../../dist/index.js";
import {
  AckedEventsSchema,
  EventErrorCode,
  EventResultSchema,
  SubmitEventsRequestSchema,
  SubmitEventsResponseSchema,
} from "../../dist/gen/tributary/v1/ingest_pb.js";

const URL = "http://127.0.0.1:50051";
const fast = { initialBackoffMs: 5, maxBackoffMs: 20 };

/**
 * A fake ingest client: stream n follows behaviours[n] (the last one
 * repeats): `refuse` fails before answering headers, `failAfter` fails the
 * stream once that many events are answered, `unavailableAt` answers that
 * index with an UNAVAILABLE event error, `gate` holds every answer until it
 * resolves, `resultsPerResponse` spreads a message's results over responses
 * of at most that many, `oneResultPerResponse` answers every event with a
 * `result` of its own. Messages go through the wire format (encoded and
 * decoded); as ingest does, a one-event message (`event`) is answered with
 * a `result`, a message of many (`events`) compactly (`acked` runs of one
 * topic and schema, `errors`). Like the transport, which asks for the next
 * message once the last one is written (a callback, in a later turn of the
 * event loop), it reads the next message a turn after answering the last.
 * A negative price is refused naming price_tick.price.
 */
function fakeIngest(...behaviours) {
  const streams = [];
  const messages = [];
  const responses = [];
  let offset = 0n;
  const client = {
    submitEvents(requests, options) {
      const received = [];
      const behaviour = behaviours[Math.min(streams.length, behaviours.length - 1)] ?? {};
      streams.push(received);
      return (async function* () {
        if (behaviour.refuse) throw behaviour.refuse;
        options.onHeader?.(new Headers({ "content-type": "application/grpc" }));
        const it = requests[Symbol.asyncIterator]();
        let index = 0n;
        for (;;) {
          if (behaviour.failAfter !== undefined && index >= BigInt(behaviour.failAfter)) {
            throw new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled);
          }
          await new Promise((resolve) => setImmediate(resolve));
          const next = await it.next();
          if (next.done) return;
          const request = fromBinary(SubmitEventsRequestSchema, toBinary(SubmitEventsRequestSchema, next.value));
          const many = request.events.length > 0;
          const events = [...(request.event ? [request.event] : []), ...request.events];
          messages.push(events.length);
          let compact = create(SubmitEventsResponseSchema);
          let inCompact = 0;
          const out = [];
          for (const event of events) {
            if (behaviour.failAfter !== undefined && index >= BigInt(behaviour.failAfter)) break;
            received.push(event.idempotencyKey);
            if (behaviour.gate) await behaviour.gate;
            let outcome;
            if (behaviour.unavailableAt !== undefined && index === BigInt(behaviour.unavailableAt)) {
              outcome = { case: "error", value: { code: EventErrorCode.UNAVAILABLE, field: "", message: "broker timeout" } };
            } else if (event.payload.value.price < 0) {
              outcome = {
                case: "error",
                value: { code: EventErrorCode.INVALID_ARGUMENT, field: "price_tick.price", message: "must be finite and positive" },
              };
            } else {
              outcome = { case: "ack", value: { topic: "tributary.events.price_tick", partition: 1 + Number(offset % 3n), offset: offset++, schemaId: 7 } };
            }
            const result = { index, outcome };
            index += 1n;
            if (!many || behaviour.oneResultPerResponse) {
              out.push(create(SubmitEventsResponseSchema, { result }));
              continue;
            }
            push(compact, result);
            inCompact += 1;
            if (inCompact >= (behaviour.resultsPerResponse ?? 4096)) {
              out.push(compact);
              compact = create(SubmitEventsResponseSchema);
              inCompact = 0;
            }
          }
          if (inCompact > 0) out.push(compact);
          for (const response of out) {
            responses.push(response);
            yield fromBinary(SubmitEventsResponseSchema, toBinary(SubmitEventsResponseSchema, response));
          }
        }
      })();
    },
  };
  return { client, streams, messages, responses };
}

/** Adds the result of the event after the last one `response` answers, as ingest does. */
function push(response, { index, outcome }) {
  if (outcome.case === "error") {
    response.errors.push(create(EventResultSchema, { index, outcome }));
    return;
  }
  const ack = outcome.value;
  let run = response.acked.at(-1);
  if (
    run === undefined ||
    run.firstIndex + BigInt(run.offsets.length) !== index ||
    run.topic !== ack.topic ||
    run.schemaId !== ack.schemaId
  ) {
    run = create(AckedEventsSchema, { firstIndex: index, topic: ack.topic, schemaId: ack.schemaId });
    response.acked.push(run);
  }
  run.partitions.push(ack.partition);
  run.offsets.push(ack.offset);
}

const tick = (i, price = 1 + i) => priceTick({ pair: "ETH-USD", source: "a", price, idempotencyKey: `k-${i}` });

test("after a stream fails, every unanswered event is sent again in order with its own key", async () => {
  const { client, streams } = fakeIngest({ failAfter: 3 }, {});
  const reconnects = [];
  const sender = new Sender(client, URL, { window: 16, ...fast, onReconnect: (info) => reconnects.push(info) });
  const pending = [];
  for (let i = 0; i < 10; i++) pending.push(await sender.send(tick(i)));
  await sender.close();
  const acks = await Promise.all(pending.map((p) => p.ack));
  assert.deepEqual(
    acks.map((a) => a.offset),
    [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n],
  );
  assert.deepEqual(acks[0], { topic: "tributary.events.price_tick", partition: 1, offset: 0n, schemaId: 7 });
  assert.equal(streams.length, 2);
  assert.deepEqual(streams[0].slice(0, 3), ["k-0", "k-1", "k-2"]);
  assert.deepEqual(
    streams[1],
    Array.from({ length: 7 }, (_, i) => `k-${i + 3}`),
  );
  assert.equal(reconnects.length, 1);
  assert.match(reconnects[0].reason, /^CANCELED/);
  const stats = sender.stats();
  assert.equal(stats.acked, 10);
  assert.equal(stats.reconnects, 1);
  assert.equal(stats.resent, reconnects[0].unanswered);
  assert.equal(stats.unanswered, 0);
});

test("a refused event rejects with EventRejected naming the field and the stream goes on", async () => {
  const { client, streams } = fakeIngest({});
  const sender = new Sender(client, URL, fast);
  const good = await sender.send(tick(0));
  const bad = await sender.send(tick(1, -5));
  const after = await sender.send(tick(2));
  await sender.close();
  assert.equal((await good.ack).offset, 0n);
  await assert.rejects(bad.ack, (error) => {
    assert.ok(error instanceof EventRejected);
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.equal(error.field, "price_tick.price");
    assert.equal(error.message, "price_tick.price: must be finite and positive");
    assert.equal(error.idempotencyKey, "k-1");
    return true;
  });
  assert.equal((await after.ack).offset, 1n);
  assert.equal(streams.length, 1);
  assert.equal(sender.stats().rejected, 1);
});

test("an event answered UNAVAILABLE is sent again with everything after it", async () => {
  const { client, streams } = fakeIngest({ unavailableAt: 1 }, {});
  const sender = new Sender(client, URL, fast);
  const pending = [];
  for (let i = 0; i < 3; i++) pending.push(await sender.send(tick(i)));
  await sender.close();
  // The fake may store event 2 on the first stream too (it was in the same
  // message); its answer is the one of the second stream, where it is
  // stored after event 1.
  const offsets = (await Promise.all(pending.map((p) => p.ack))).map((a) => a.offset);
  assert.equal(offsets[0], 0n);
  assert.ok(offsets[0] < offsets[1] && offsets[1] < offsets[2], String(offsets));
  assert.deepEqual(streams[1], ["k-1", "k-2"]);
  assert.equal(sender.stats().reconnects, 1);
});

test("send waits while `window` events are unanswered", async () => {
  let open;
  const gate = new Promise((resolve) => {
    open = resolve;
  });
  const { client } = fakeIngest({ gate });
  const sender = new Sender(client, URL, { window: 2, ...fast });
  await sender.send(tick(0));
  await sender.send(tick(1));
  let third = false;
  const sending = sender.send(tick(2)).then((p) => {
    third = true;
    return p;
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(third, false, "the third send went through with a full window");
  assert.equal(sender.stats().unanswered, 2);
  open();
  const pending = await sending;
  assert.equal(third, true);
  await sender.close();
  assert.equal((await pending.ack).offset, 2n);
});

test("an event without an idempotency key gets one, reported on its Pending", async () => {
  const { client, streams } = fakeIngest({});
  const sender = new Sender(client, URL, fast);
  const event = priceTick({ pair: "ETH-USD", source: "a", price: 1 });
  event.idempotencyKey = "";
  const pending = await sender.send(event);
  await sender.close();
  assert.match(pending.idempotencyKey, /^[0-9a-f-]{36}$/);
  assert.deepEqual(streams[0], [pending.idempotencyKey]);
  assert.equal(event.idempotencyKey, "", "the caller's event is left as it was");
});

test("a status no retry can fix rejects every pending event at once", async () => {
  const refuse = new ConnectError("missing bearer token", Code.Unauthenticated, { "www-authenticate": "Bearer" });
  const { client, streams } = fakeIngest({ refuse });
  const sender = new Sender(client, URL, fast);
  const pending = [await sender.send(tick(0)), await sender.send(tick(1))];
  for (const p of pending) {
    await assert.rejects(p.ack, (error) => error instanceof StatusError && error.code === "UNAUTHENTICATED");
  }
  await assert.rejects(sender.close(), (error) => error instanceof StatusError && error.code === "UNAUTHENTICATED");
  await assert.rejects(sender.send(tick(2)), (error) => error instanceof StatusError);
  assert.equal(streams.length, 1);
});

test("a sender that never reaches ingest reports the address after firstConnectTimeoutMs", async () => {
  const refuse = new ConnectError("connect ECONNREFUSED 127.0.0.1:50051", Code.Unavailable);
  const { client, streams } = fakeIngest({ refuse });
  const sender = new Sender(client, URL, { ...fast, firstConnectTimeoutMs: 200 });
  const started = Date.now();
  const pending = await sender.send(tick(0));
  await assert.rejects(pending.ack, (error) => {
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.url, URL);
    assert.match(error.message, /^cannot reach ingest at http:\/\/127\.0\.0\.1:50051: UNAVAILABLE: connect ECONNREFUSED/);
    return true;
  });
  const took = Date.now() - started;
  assert.ok(took >= 200 && took < 3000, `took ${took} ms`);
  assert.ok(streams.length > 2, "it retried meanwhile");
  await assert.rejects(sender.close(), ConnectionError);
});

test("once reached, the sender gives up after giveUpAfterMs without progress", async () => {
  const { client } = fakeIngest({ failAfter: 1 }, { failAfter: 0 });
  const sender = new Sender(client, URL, { ...fast, giveUpAfterMs: 200 });
  const first = await sender.send(tick(0));
  const second = await sender.send(tick(1));
  assert.equal((await first.ack).offset, 0n);
  await assert.rejects(second.ack, (error) => error instanceof GaveUp && /gave up after \d+ attempts/.test(error.message));
  await assert.rejects(sender.close(), GaveUp);
});

test("a closed sender takes no more events; closing twice is fine", async () => {
  const { client, streams } = fakeIngest({});
  const sender = new Sender(client, URL, fast);
  await sender.close();
  await sender.close();
  await assert.rejects(sender.send(tick(0)), SenderClosed);
  assert.equal(streams.length, 0, "no stream is opened without events");
});

/** Sends `count` ticks (`bad(i)` ones with a negative price) and returns their Pendings. */
async function sendTicks(sender, count, bad = () => false) {
  const pending = [];
  for (let i = 0; i < count; i++) pending.push(await sender.send(tick(i, bad(i) ? -1 : 1 + i)));
  return pending;
}

/** Every answer in order: the refused ones name the field, the others are acked with consecutive offsets. */
async function checkAnswers(pending, bad) {
  let offset = 0n;
  for (const [i, p] of pending.entries()) {
    if (bad(i)) {
      await assert.rejects(p.ack, (error) => error instanceof EventRejected && error.field === "price_tick.price");
    } else {
      assert.equal((await p.ack).offset, offset, `event ${i}`);
      offset += 1n;
    }
  }
}

test("queued events go many to a message, in order, and are answered compactly", async () => {
  const { client, streams, messages, responses } = fakeIngest({});
  const sender = new Sender(client, URL, { window: 2000, ...fast });
  const bad = (i) => i % 100 === 7;
  const pending = await sendTicks(sender, 1500, bad);
  await sender.close();
  assert.deepEqual(
    streams[0],
    Array.from({ length: 1500 }, (_, i) => `k-${i}`),
  );
  assert.equal(messages.reduce((a, b) => a + b, 0), 1500);
  assert.ok(messages.length <= 4, String(messages));
  assert.ok(Math.max(...messages) <= 1024, String(messages));
  // Answered in runs with the refusals between them, not one by one.
  assert.ok(responses.every((r) => r.result === undefined));
  assert.ok(responses.length <= messages.length);
  assert.equal(
    responses.reduce((n, r) => n + r.errors.length, 0),
    15,
  );
  assert.ok(responses.reduce((n, r) => n + r.acked.length, 0) >= 15);
  await checkAnswers(pending, bad);
  const stats = sender.stats();
  assert.deepEqual([stats.acked, stats.rejected, stats.resent], [1485, 15, 0]);
});

test("after a failure, the unanswered events are resent many to a message", async () => {
  const { client, streams, messages } = fakeIngest({ failAfter: 10 }, {});
  const sender = new Sender(client, URL, { window: 500, ...fast });
  const pending = await sendTicks(sender, 500);
  await sender.close();
  await checkAnswers(pending, () => false);
  assert.equal(streams.length, 2);
  assert.deepEqual(
    streams[1],
    Array.from({ length: 490 }, (_, i) => `k-${i + 10}`),
  );
  assert.equal(sender.stats().resent, 490);
  assert.ok(messages.length < 10, String(messages));
});

test("results spread over several responses are matched in order", async () => {
  const { client, messages, responses } = fakeIngest({ resultsPerResponse: 3 });
  const sender = new Sender(client, URL, { window: 64, ...fast });
  const bad = (i) => i % 10 === 4;
  const pending = await sendTicks(sender, 200, bad);
  await sender.close();
  assert.ok(responses.every((r) => r.acked.reduce((n, run) => n + run.offsets.length, 0) + r.errors.length <= 3));
  assert.ok(messages.length < responses.length, `${messages.length} messages, ${responses.length} responses`);
  await checkAnswers(pending, bad);
});

test("one-result responses are matched in order", async () => {
  const { client, responses } = fakeIngest({ oneResultPerResponse: true });
  const sender = new Sender(client, URL, { window: 64, ...fast });
  const bad = (i) => i % 10 === 4;
  const pending = await sendTicks(sender, 200, bad);
  await sender.close();
  assert.equal(responses.length, 200);
  assert.ok(responses.every((r) => r.result !== undefined));
  await checkAnswers(pending, bad);
});

test("an event protobuf cannot encode is refused by send, before anything is sent", async () => {
  const { client, streams } = fakeIngest({});
  const sender = new Sender(client, URL, fast);
  const event = tick(0);
  event.eventTime.nanos = 2 ** 40; // not an int32
  await assert.rejects(sender.send(event), (error) => error instanceof InvalidEvent && /int32/.test(error.message));
  assert.equal(sender.stats().sent, 0);
  const after = await sender.send(tick(1));
  await sender.close();
  assert.equal((await after.ack).offset, 0n);
  assert.deepEqual(streams, [["k-1"]]);
});
