// The sender against a fake IngestService: resend after a failed stream
// (in order, with the original idempotency keys), per-event refusals,
// backpressure, giving up, and statuses no retry can fix.
import assert from "node:assert/strict";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

import { ConnectionError, EventRejected, GaveUp, priceTick, Sender, SenderClosed, StatusError } from "../../dist/index.js";
import { EventErrorCode, SubmitEventsResponseSchema } from "../../dist/gen/tributary/v1/ingest_pb.js";

const URL = "http://127.0.0.1:50051";
const fast = { initialBackoffMs: 5, maxBackoffMs: 20 };

/**
 * A fake ingest client: stream n follows behaviours[n] (the last one
 * repeats): `refuse` fails before answering headers, `failAfter` fails the
 * stream after that many answers, `unavailableAt` answers that index with
 * an UNAVAILABLE event error, `gate` holds every answer until it resolves.
 * A negative price is refused naming price_tick.price.
 */
function fakeIngest(...behaviours) {
  const streams = [];
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
        for (let index = 0n; ; index++) {
          if (behaviour.failAfter !== undefined && index >= BigInt(behaviour.failAfter)) {
            throw new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled);
          }
          const next = await it.next();
          if (next.done) return;
          const event = next.value.event;
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
            outcome = { case: "ack", value: { topic: "tributary.events.price_tick", partition: 1, offset: offset++, schemaId: 7 } };
          }
          yield create(SubmitEventsResponseSchema, { result: { index, outcome } });
        }
      })();
    },
  };
  return { client, streams };
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
  assert.deepEqual(
    (await Promise.all(pending.map((p) => p.ack))).map((a) => a.offset),
    [0n, 1n, 2n],
  );
  assert.deepEqual(streams[1], ["k-1", "k-2"]);
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
