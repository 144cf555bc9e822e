// The pager follows next_page_token with the other parameters unchanged, and
// aggregates come back as plain numbers and Dates.
import assert from "node:assert/strict";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";

import { AggregatePages, StatusError } from "../../dist/index.js";
import { aggregatesRequest } from "../../dist/query.js";
import { AggregateOrder, GetAggregatesResponseSchema } from "../../dist/gen/tributary/v1/query_pb.js";

const MINUTE = 60_000;

test("a request maps times, keys, granularity, order and page size", () => {
  const request = aggregatesRequest({
    eventType: "price_tick",
    start: "2026-01-01T00:00:00Z",
    end: new Date("2026-01-02T00:00:00Z"),
    keys: ["ETH-USD/a"],
    granularity: "1h",
    order: "desc",
    pageSize: 500,
  });
  assert.equal(request.eventType, "price_tick");
  assert.deepEqual(request.keys, ["ETH-USD/a"]);
  assert.equal(request.startTime.seconds, BigInt(Date.parse("2026-01-01T00:00:00Z") / 1000));
  assert.equal(request.endTime.seconds, BigInt(Date.parse("2026-01-02T00:00:00Z") / 1000));
  assert.equal(request.granularity.seconds, 3600n);
  assert.equal(request.order, AggregateOrder.WINDOW_DESC);
  assert.equal(request.pageSize, 500);
  const defaults = aggregatesRequest({ eventType: "ad_click", start: 0, end: MINUTE });
  assert.equal(defaults.granularity, undefined);
  assert.equal(defaults.order, AggregateOrder.UNSPECIFIED);
  assert.equal(defaults.pageSize, 0);
});

function aggregate(i) {
  return {
    eventType: "ad_click",
    key: `adv-${i}`,
    windowStart: timestampFromMs(i * MINUTE),
    windowEnd: timestampFromMs((i + 1) * MINUTE),
    count: BigInt(10 + i),
    distinctCount: BigInt(i),
    revisions: 0n,
  };
}

test("the pager follows page tokens until the last page", async () => {
  const seen = [];
  const query = {
    async getAggregates(request) {
      seen.push({ token: request.pageToken, eventType: request.eventType, pageSize: request.pageSize });
      const page = Number(request.pageToken || "0");
      return create(GetAggregatesResponseSchema, {
        aggregates: [aggregate(2 * page), aggregate(2 * page + 1)],
        nextPageToken: page < 2 ? String(page + 1) : "",
      });
    },
  };
  const pages = new AggregatePages(query, "http://x:1", { eventType: "ad_click", start: 0, end: 10 * MINUTE, pageSize: 2 }, 1000);
  const all = await pages.toArray();
  assert.deepEqual(
    seen.map((s) => s.token),
    ["", "1", "2"],
  );
  assert.ok(seen.every((s) => s.eventType === "ad_click" && s.pageSize === 2));
  assert.equal(all.length, 6);
  assert.deepEqual(all[3], {
    eventType: "ad_click",
    key: "adv-3",
    windowStart: new Date(3 * MINUTE),
    windowEnd: new Date(4 * MINUTE),
    count: 13,
    distinctCount: 3,
    revisions: 0,
  });
  // Iterating again starts from the first page.
  const keys = [];
  for await (const a of pages) keys.push(a.key);
  assert.deepEqual(keys, ["adv-0", "adv-1", "adv-2", "adv-3", "adv-4", "adv-5"]);
  const sizes = [];
  for await (const page of pages.pages()) sizes.push(page.length);
  assert.deepEqual(sizes, [2, 2, 2]);
});

test("a refused query rejects with a StatusError naming the parameter", async () => {
  const query = {
    async getAggregates() {
      throw new ConnectError("page_size: must be at most 10000", Code.InvalidArgument, { "grpc-status": "3" });
    },
  };
  const pages = new AggregatePages(query, "http://x:1", { eventType: "ad_click", start: 0, end: MINUTE, pageSize: 20000 }, 1000);
  await assert.rejects(pages.toArray(), (error) => error instanceof StatusError && error.field === "page_size");
});
