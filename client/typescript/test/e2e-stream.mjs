// End-to-end run of the SDK against a real pipeline (driven by
// stack/tests/sdk_typescript.rs, which may SIGKILL and restart ingest while
// this streams):
//
//   node test/e2e-stream.mjs URL [EVENTS]
//
// 1. Streams EVENTS (default 20,000) mixed ad clicks and price ticks (several
//    keys, event times spread over four one-minute windows a few minutes
//    ago, some invalid: a bad IP address, a negative price) through one
//    sender, printing `acked N` every 250 acknowledgements and a line per
//    reconnection.
// 2. Checks that every invalid event was rejected naming its field and every
//    other one acknowledged.
// 3. Computes the aggregates from what the SDK was told (acknowledged events
//    only: per key and window, count and distinct IPs of clicks; count, min,
//    max and sum of ticks) and polls client.aggregates() until they are
//    exact (60 s at most); checks client.priceAccuracy() against them.
// Prints one JSON summary line last; exits 0 only when everything matched.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";

import { adClick, connect, EventRejected, priceTick } from "../dist/index.js";

const MINUTE = 60_000;
const [url, eventsText] = process.argv.slice(2);
if (!url) {
  console.error("usage: node test/e2e-stream.mjs URL [EVENTS]");
  process.exit(2);
}
const total = Number(eventsText ?? 20_000);
const started = Date.now();
const client = connect(url, {
  ...(process.env.TRIBUTARY_API_KEY ? { apiKey: process.env.TRIBUTARY_API_KEY } : {}),
  ...(process.env.TRIBUTARY_CA_CERT ? { ca: readFileSync(process.env.TRIBUTARY_CA_CERT) } : {}),
});

// Four whole windows, ending at least a minute ago.
const base = Math.floor(started / MINUTE) * MINUTE - 5 * MINUTE;
const span = 4 * MINUTE;
const run = randomUUID().slice(0, 8);
const pairs = ["ETH-USD", "BTC-USD"];
const sources = ["ts-a", "ts-b", "ts-c"];

/** The i-th event, and what ingest must say about it. */
function event(i) {
  const eventTime = base + Math.floor((i * span) / total);
  const idempotencyKey = `${run}-${i}`;
  if (i % 1000 === 500) {
    return {
      invalid: "ad_click.ip_address",
      event: adClick({
        advertiserId: "ts-adv-0",
        ipAddress: "not-an-ip",
        userAgent: "sdk-typescript",
        referringUrl: "https://example.com/",
        eventTime,
        idempotencyKey,
      }),
    };
  }
  if (i % 1000 === 750) {
    return {
      invalid: "price_tick.price",
      event: priceTick({ pair: "ETH-USD", source: "ts-a", price: -1, eventTime, idempotencyKey }),
    };
  }
  if (i % 3 === 0) {
    // Multiples of 1/8: every sum is exact whatever order it is added in.
    const price = 100 + (i % 997) / 8;
    return {
      event: priceTick({
        pair: pairs[i % pairs.length],
        source: sources[Math.floor(i / 3) % sources.length],
        price,
        volume: 1,
        eventTime,
        idempotencyKey,
      }),
    };
  }
  return {
    event: adClick({
      advertiserId: `ts-adv-${i % 5}`,
      ipAddress: `10.${i % 7}.${i % 11}.${i % 3}`,
      userAgent: "sdk-typescript",
      referringUrl: "https://example.com/",
      eventTime,
      idempotencyKey,
      ...(i % 2 === 0 ? { campaignId: "spring" } : {}),
      metadata: { i },
    }),
  };
}

// 1. Stream everything through one sender.
const sender = client.sender({
  // The default window (1024 unanswered events); ingest may still be
  // starting when the first event is sent.
  firstConnectTimeoutMs: 60_000,
  onReconnect: (info) =>
    console.log(`reconnecting after ${info.delayMs} ms, ${info.unanswered} unanswered: ${info.reason}`),
});
let acked = 0;
const answers = [];
for (let i = 0; i < total; i++) {
  const { event: e, invalid } = event(i);
  const pending = await sender.send(e);
  answers.push(
    pending.ack.then(
      (ack) => {
        acked += 1;
        if (acked % 250 === 0) console.log(`acked ${acked}`);
        return { i, e, invalid, ack };
      },
      (error) => ({ i, e, invalid, error }),
    ),
  );
}
let closeError = "";
await sender.close().catch((error) => {
  closeError = String(error);
});
const settled = await Promise.all(answers);
const stats = sender.stats();
console.log(`sent ${total}: ${JSON.stringify(stats)}`);

// 2. Per-event answers.
const problems = closeError ? [`close: ${closeError}`] : [];
let rejected = 0;
const fields = {};
for (const { i, e, invalid, ack, error } of settled) {
  if (invalid) {
    if (!(error instanceof EventRejected)) {
      problems.push(`event ${i} (invalid ${invalid}) was not rejected: ${ack ? "acknowledged" : error}`);
    } else if (error.field !== invalid || error.code !== "INVALID_ARGUMENT" || !error.message.startsWith(`${invalid}: `)) {
      problems.push(`event ${i}: expected INVALID_ARGUMENT naming ${invalid}, got ${error.code} ${error.field}: ${error.message}`);
    } else if (error.idempotencyKey !== e.idempotencyKey) {
      problems.push(`event ${i}: the rejection carries idempotency key ${error.idempotencyKey}`);
    } else {
      rejected += 1;
      fields[error.field] = (fields[error.field] ?? 0) + 1;
    }
  } else if (error !== undefined) {
    problems.push(`event ${i} was not acknowledged: ${error}`);
  } else if (!ack.topic.startsWith("tributary.events.") || ack.schemaId <= 0 || typeof ack.offset !== "bigint") {
    problems.push(`event ${i}: odd ack ${JSON.stringify({ ...ack, offset: String(ack.offset) })}`);
  }
}

// 3. Ground truth from the acknowledged events.
const clicks = new Map();
const ticks = new Map();
for (const { e, ack } of settled) {
  if (ack === undefined) continue;
  const ms = Number(e.eventTime.seconds) * 1000 + Math.floor(e.eventTime.nanos / 1e6);
  const window = Math.floor(ms / MINUTE) * MINUTE;
  if (e.payload.case === "adClick") {
    const id = `${e.payload.value.advertiserId}|${window}`;
    const group = clicks.get(id) ?? { count: 0, ips: new Set() };
    group.count += 1;
    group.ips.add(e.payload.value.ipAddress);
    clicks.set(id, group);
  } else {
    const t = e.payload.value;
    const id = `${t.pair}/${t.source}|${window}`;
    const group = ticks.get(id) ?? { count: 0, min: Infinity, max: -Infinity, sum: 0 };
    group.count += 1;
    group.min = Math.min(group.min, t.price);
    group.max = Math.max(group.max, t.price);
    group.sum += t.price;
    ticks.set(id, group);
  }
}
const expected = {};
for (const [id, g] of clicks) expected[`ad_click ${id}`] = `count=${g.count} distinct=${g.ips.size}`;
for (const [id, g] of ticks) expected[`price_tick ${id}`] = `count=${g.count} min=${g.min} max=${g.max} sum=${g.sum}`;

async function observed() {
  const got = {};
  for (const eventType of ["ad_click", "price_tick"]) {
    for await (const a of client.aggregates({ eventType, start: base, end: base + span, pageSize: 7 })) {
      if (!a.key.startsWith("ts-adv-") && !a.key.includes("/ts-")) continue;
      const id = `${eventType} ${a.key}|${a.windowStart.getTime()}`;
      got[id] =
        eventType === "ad_click"
          ? `count=${a.count} distinct=${a.distinctCount}`
          : `count=${a.count} min=${a.min} max=${a.max} sum=${a.sum}`;
    }
  }
  return got;
}

function differences(got) {
  const lines = [];
  for (const id of new Set([...Object.keys(expected), ...Object.keys(got)])) {
    if (expected[id] !== got[id]) lines.push(`${id}: expected ${expected[id]}, got ${got[id]}`);
  }
  return lines.sort();
}

let diff = ["not queried yet"];
let queryError = "";
const polling = Date.now();
while (Date.now() - polling < 60_000) {
  try {
    diff = differences(await observed());
    queryError = "";
  } catch (error) {
    queryError = String(error);
  }
  if (diff.length === 0) break;
  await new Promise((resolve) => setTimeout(resolve, 500));
}
const exactAfter = (Date.now() - polling) / 1000;
if (diff.length > 0) {
  problems.push(`aggregates not exact after 60 s (${diff.length} groups differ${queryError ? `, last error ${queryError}` : ""}):`);
  problems.push(...diff.slice(0, 20));
}

// The price accuracy of each source: its average against the others'.
let accuracyChecked = 0;
if (diff.length === 0) {
  const accuracy = await client.priceAccuracy({ pairs, start: base, end: base + span, granularity: "1m" });
  for (const a of accuracy) {
    if (!a.source.startsWith("ts-")) continue;
    const mine = ticks.get(`${a.pair}/${a.source}|${a.windowStart.getTime()}`);
    const others = sources
      .filter((s) => s !== a.source)
      .map((s) => ticks.get(`${a.pair}/${s}|${a.windowStart.getTime()}`))
      .filter((g) => g !== undefined)
      .map((g) => g.sum / g.count);
    const othersMean = others.reduce((x, y) => x + y, 0) / others.length;
    const close = (x, y) => Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y));
    if (mine === undefined || !close(a.sourceAvg, mine.sum / mine.count) || !close(a.othersMean, othersMean)) {
      problems.push(`price accuracy of ${a.pair}/${a.source} at ${a.windowStart.toISOString()}: ${JSON.stringify(a)}`);
    }
    accuracyChecked += 1;
  }
  if (accuracyChecked === 0) problems.push("price accuracy returned nothing");
}

const validEvents = settled.filter((s) => !s.invalid).length;
const summary = {
  events: total,
  acked,
  valid: validEvents,
  rejected,
  rejected_fields: fields,
  resent: stats.resent,
  reconnects: stats.reconnects,
  groups: Object.keys(expected).length,
  exact: diff.length === 0,
  exact_after_seconds: exactAfter,
  accuracy_checked: accuracyChecked,
  seconds: (Date.now() - started) / 1000,
  problems: problems.slice(0, 30),
};
console.log(JSON.stringify(summary));
client.close();
process.exit(problems.length === 0 && acked === validEvents ? 0 : 1);
