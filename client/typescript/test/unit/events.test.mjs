// The builders: defaults, options, extra fields, and what they refuse.
import assert from "node:assert/strict";
import { test } from "node:test";

import { adClick, generic, InvalidEvent, priceTick, TributaryError } from "../../dist/index.js";
import { toDuration, toDurationMillis } from "../../dist/time.js";

const click = {
  advertiserId: "adv-1",
  ipAddress: "203.0.113.7",
  userAgent: "curl/8",
  referringUrl: "https://example.com/",
};

const ms = (timestamp) => Number(timestamp.seconds) * 1000 + timestamp.nanos / 1e6;

test("adClick defaults the event time to now and the idempotency key to a random UUID", () => {
  const before = Date.now();
  const a = adClick(click);
  const b = adClick(click);
  assert.equal(a.eventType, "ad_click");
  assert.equal(a.key, "");
  assert.equal(a.payload.case, "adClick");
  assert.equal(a.payload.value.advertiserId, "adv-1");
  assert.equal(a.payload.value.ipAddress, "203.0.113.7");
  assert.match(a.idempotencyKey, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(a.idempotencyKey, b.idempotencyKey);
  assert.ok(ms(a.eventTime) >= before && ms(a.eventTime) <= Date.now());
  assert.equal(a.extraFields, undefined);
  assert.equal(a.payload.value.campaignId, undefined);
});

test("adClick takes the optional fields, extra fields and times as Date, ms or RFC 3339", () => {
  const e = adClick({
    ...click,
    eventTime: "2026-01-01T00:00:01.250Z",
    idempotencyKey: "click-1",
    metadata: { slot: "top", n: 2, nested: { ok: true }, list: [1, "a", null] },
    campaignId: "spring",
    fields: { country: "DE" },
  });
  assert.equal(ms(e.eventTime), Date.parse("2026-01-01T00:00:01.250Z"));
  assert.equal(e.idempotencyKey, "click-1");
  assert.equal(e.payload.value.campaignId, "spring");
  assert.deepEqual(e.payload.value.metadata, { slot: "top", n: 2, nested: { ok: true }, list: [1, "a", null] });
  assert.deepEqual(e.extraFields, { country: "DE" });
  assert.equal(ms(adClick({ ...click, eventTime: 1_700_000_000_123 }).eventTime), 1_700_000_000_123);
  assert.equal(ms(adClick({ ...click, eventTime: new Date(1_700_000_000_000) }).eventTime), 1_700_000_000_000);
});

test("priceTick carries pair, source, price, volume and an explicit key", () => {
  const e = priceTick({ pair: "ETH-USD", source: "coinbase", price: 3012.5, volume: 1.25, key: "ETH-USD" });
  assert.equal(e.eventType, "price_tick");
  assert.equal(e.key, "ETH-USD");
  assert.equal(e.payload.case, "priceTick");
  assert.deepEqual(
    { pair: e.payload.value.pair, source: e.payload.value.source, price: e.payload.value.price, volume: e.payload.value.volume },
    { pair: "ETH-USD", source: "coinbase", price: 3012.5, volume: 1.25 },
  );
  assert.equal(priceTick({ pair: "ETH-USD", source: "a", price: 1 }).payload.value.volume, undefined);
  // Ingest judges the price (finite, positive): the builder sends it as given.
  assert.equal(priceTick({ pair: "ETH-USD", source: "a", price: -1 }).payload.value.price, -1);
});

test("generic carries any event type's fields as a JSON object", () => {
  const e = generic("signup", { plan: "pro", seats: 3 }, { key: "user-7", idempotencyKey: "s-1" });
  assert.equal(e.eventType, "signup");
  assert.equal(e.key, "user-7");
  assert.equal(e.idempotencyKey, "s-1");
  assert.equal(e.payload.case, "generic");
  assert.deepEqual(e.payload.value, { plan: "pro", seats: 3 });
});

function refuses(build, field) {
  assert.throws(build, (error) => {
    assert.ok(error instanceof InvalidEvent, String(error));
    assert.ok(error instanceof TributaryError);
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.equal(error.field, field);
    assert.ok(error.message.startsWith(`${field}: `), error.message);
    return true;
  });
}

test("the builders refuse what protobuf cannot carry, naming the field", () => {
  refuses(() => adClick({ ...click, ipAddress: 7 }), "ad_click.ip_address");
  refuses(() => adClick({ ...click, advertiserId: undefined }), "ad_click.advertiser_id");
  refuses(() => adClick({ ...click, eventTime: "yesterday" }), "event_time");
  // Without an offset it would mean the local time of whoever runs it.
  refuses(() => adClick({ ...click, eventTime: "2026-01-01T00:00:00" }), "event_time");
  assert.equal(ms(adClick({ ...click, eventTime: "2026-01-01T01:00:00+01:00" }).eventTime), Date.UTC(2026, 0, 1));
  refuses(() => adClick({ ...click, metadata: [1, 2] }), "ad_click.metadata");
  refuses(() => adClick({ ...click, metadata: { bad: Number.NaN } }), "ad_click.metadata.bad");
  refuses(() => adClick({ ...click, fields: { when: new Date() } }), "extra_fields.when");
  refuses(() => priceTick({ pair: "ETH-USD", source: "a", price: "1" }), "price_tick.price");
  refuses(() => generic("signup", "plan=pro"), "generic");
  refuses(() => generic("signup", { list: [1, Infinity] }), "generic.list[1]");
});

test("durations are milliseconds or 500ms, 30s, 1m, 1h, 1d", () => {
  assert.equal(toDurationMillis("1m", "g"), 60_000);
  assert.equal(toDurationMillis("1h", "g"), 3_600_000);
  assert.equal(toDurationMillis("1d", "g"), 86_400_000);
  assert.equal(toDurationMillis(1500, "g"), 1500);
  const d = toDuration("90s", "granularity");
  assert.equal(d.seconds, 90n);
  assert.equal(d.nanos, 0);
  const half = toDuration(1500, "granularity");
  assert.equal(half.seconds, 1n);
  assert.equal(half.nanos, 500_000_000);
  refuses(() => toDuration("1 week", "granularity"), "granularity");
  refuses(() => toDuration(0, "granularity"), "granularity");
});
