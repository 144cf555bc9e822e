// Reading aggregates back: AggregatePages calls GetAggregates page by page,
// passing each next_page_token on with the other parameters unchanged,
// until the last (empty-token) page.
import { clone, create } from "@bufbuild/protobuf";
import type { Client as ServiceClient } from "@connectrpc/connect";

import { fromCallError } from "./errors.js";
import {
  type Aggregate as AggregateMessage,
  AggregateOrder,
  type GetAggregatesRequest,
  GetAggregatesRequestSchema,
  type GetPriceAccuracyRequest,
  GetPriceAccuracyRequestSchema,
  type PriceAccuracy as PriceAccuracyMessage,
  QueryService,
} from "./gen/tributary/v1/query_pb.js";
import { type DurationInput, fromTimestamp, type TimeInput, toDuration, toTimestamp } from "./time.js";

/** What `client.aggregates` reads. */
export interface AggregatesRequest {
  /** `ad_click`, `price_tick`, or a schema-driven type. */
  eventType: string;
  /** Inclusive start: windows starting at or after it. */
  start: TimeInput;
  /** Exclusive end: windows starting before it. */
  end: TimeInput;
  /** Only these group keys (advertiser id, `pair/source`, the event key); all when absent. */
  keys?: string[];
  /** The bucket size, a multiple of the processor's window (default the window): `1m`, `1h`, `1d`, or milliseconds. */
  granularity?: DurationInput;
  /** Window start ascending (default) or descending; keys ascending within a bucket. */
  order?: "asc" | "desc";
  /** Aggregates per page (default 100, at most 10000). */
  pageSize?: number;
}

/** The summary of one key over one bucket of time. */
export interface Aggregate {
  eventType: string;
  /** Advertiser id for ad_click, `pair/source` for price_tick, the event key otherwise. */
  key: string;
  /** Inclusive start of the bucket. */
  windowStart: Date;
  /** Exclusive end of the bucket. */
  windowEnd: Date;
  /** The number of events. */
  count: number;
  /** Distinct client IPs (ad_click only). */
  distinctCount?: number;
  /** Smallest, largest, sum, mean and latest value (price_tick only). */
  min?: number;
  max?: number;
  sum?: number;
  avg?: number;
  last?: number;
  /** How many times late events corrected the bucket's windows after their final was stored. */
  revisions: number;
}

/** What `client.priceAccuracy` reads. */
export interface PriceAccuracyRequest {
  /** Only these pairs, e.g. `ETH-USD`; all when absent. */
  pairs?: string[];
  start: TimeInput;
  end: TimeInput;
  granularity?: DurationInput;
}

/** One source compared with the others for one pair and bucket. */
export interface PriceAccuracy {
  pair: string;
  source: string;
  windowStart: Date;
  sourceAvg: number;
  othersMean: number;
  percentDifference: number;
}

/** The GetAggregatesRequest of `request` (first page). */
export function aggregatesRequest(request: AggregatesRequest): GetAggregatesRequest {
  return create(GetAggregatesRequestSchema, {
    eventType: request.eventType,
    keys: request.keys ?? [],
    startTime: toTimestamp(request.start, "start_time"),
    endTime: toTimestamp(request.end, "end_time"),
    ...(request.granularity === undefined ? {} : { granularity: toDuration(request.granularity, "granularity") }),
    order:
      request.order === "desc"
        ? AggregateOrder.WINDOW_DESC
        : request.order === "asc"
          ? AggregateOrder.WINDOW_ASC
          : AggregateOrder.UNSPECIFIED,
    pageSize: request.pageSize ?? 0,
  });
}

/** The GetPriceAccuracyRequest of `request`. */
export function priceAccuracyRequest(request: PriceAccuracyRequest): GetPriceAccuracyRequest {
  return create(GetPriceAccuracyRequestSchema, {
    pairs: request.pairs ?? [],
    startTime: toTimestamp(request.start, "start_time"),
    endTime: toTimestamp(request.end, "end_time"),
    ...(request.granularity === undefined ? {} : { granularity: toDuration(request.granularity, "granularity") }),
  });
}

/** The SDK's Aggregate of a protobuf Aggregate. */
export function toAggregate(a: AggregateMessage): Aggregate {
  const aggregate: Aggregate = {
    eventType: a.eventType,
    key: a.key,
    windowStart: fromTimestamp(a.windowStart),
    windowEnd: fromTimestamp(a.windowEnd),
    count: Number(a.count),
    revisions: Number(a.revisions),
  };
  if (a.distinctCount !== undefined) aggregate.distinctCount = Number(a.distinctCount);
  if (a.min !== undefined) aggregate.min = a.min;
  if (a.max !== undefined) aggregate.max = a.max;
  if (a.sum !== undefined) aggregate.sum = a.sum;
  if (a.avg !== undefined) aggregate.avg = a.avg;
  if (a.last !== undefined) aggregate.last = a.last;
  return aggregate;
}

/** The SDK's PriceAccuracy of a protobuf PriceAccuracy. */
export function toPriceAccuracy(p: PriceAccuracyMessage): PriceAccuracy {
  return {
    pair: p.pair,
    source: p.source,
    windowStart: fromTimestamp(p.windowStart),
    sourceAvg: p.sourceAvg,
    othersMean: p.othersMean,
    percentDifference: p.percentDifference,
  };
}

/**
 * The pages of one GetAggregates query; see `client.aggregates`. An async
 * iterable of aggregates; each iteration starts from the first page again.
 */
export class AggregatePages implements AsyncIterable<Aggregate> {
  readonly #client: ServiceClient<typeof QueryService>;
  readonly #url: string;
  readonly #request: GetAggregatesRequest;
  readonly #timeoutMs: number;

  constructor(client: ServiceClient<typeof QueryService>, url: string, request: AggregatesRequest, timeoutMs: number) {
    this.#client = client;
    this.#url = url;
    this.#request = aggregatesRequest(request);
    this.#timeoutMs = timeoutMs;
  }

  /** The pages, one array of aggregates each. */
  async *pages(): AsyncGenerator<Aggregate[], void, undefined> {
    const request = clone(GetAggregatesRequestSchema, this.#request);
    for (;;) {
      let page;
      try {
        page = await this.#client.getAggregates(request, { timeoutMs: this.#timeoutMs });
      } catch (error) {
        throw fromCallError(error, this.#url);
      }
      yield page.aggregates.map(toAggregate);
      if (page.nextPageToken === "") return;
      request.pageToken = page.nextPageToken;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Aggregate, void, undefined> {
    for await (const page of this.pages()) yield* page;
  }

  /** Every aggregate of every page. */
  async toArray(): Promise<Aggregate[]> {
    const all: Aggregate[] = [];
    for await (const page of this.pages()) all.push(...page);
    return all;
  }
}
