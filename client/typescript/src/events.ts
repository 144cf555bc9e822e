// Building events: typed builders for the built-in types (adClick,
// priceTick) and generic JSON events for schema-driven types. Every builder
// stamps the event time (default now) and an idempotency key (default a
// random UUID), so the sender's resends are counted once.
import { randomUUID } from "node:crypto";

import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";

import { InvalidEvent } from "./errors.js";
import { type Event, EventSchema } from "./gen/tributary/v1/event_pb.js";
import { type TimeInput, toTimestamp } from "./time.js";

export type { Event };

/** What every builder takes besides the payload. */
export interface EnvelopeOptions {
  /** When the event happened (default: now). */
  eventTime?: TimeInput;
  /** Makes retries safe: an event sent again with the same key is counted once (default: a random UUID). */
  idempotencyKey?: string;
  /**
   * The partitioning and aggregation key. Typed events accept only their
   * natural key (`advertiserId`, `pair`), which is also the default.
   */
  key?: string;
}

/** Fields of a newer registered schema version than the typed message has. */
export interface ExtraFieldsOption {
  /**
   * Fields the typed message does not have, added by a newer registered
   * version of the event type's schema (e.g. `{country: "DE"}` with an
   * ad_click v3). Sent as the event's `extra_fields`; ingest writes the
   * event with the newest registered version that has every field and
   * refuses a field no registered version has.
   */
  fields?: Record<string, JsonValue>;
}

/** An ad click; see `adClick`. */
export interface AdClickInput extends EnvelopeOptions, ExtraFieldsOption {
  /** The advertiser the click is billed to; the aggregation key. */
  advertiserId: string;
  /** The client's IPv4 or IPv6 address. */
  ipAddress: string;
  /** The client's User-Agent header. */
  userAgent: string;
  /** The absolute http(s) URL the click came from. */
  referringUrl: string;
  /** Free-form metadata (a JSON object). */
  metadata?: Record<string, JsonValue>;
  /** The campaign, when known (schema v2). */
  campaignId?: string;
}

/** A price observation; see `priceTick`. */
export interface PriceTickInput extends EnvelopeOptions, ExtraFieldsOption {
  /** The pair, e.g. `ETH-USD`; the aggregation key. */
  pair: string;
  /** Where the price came from, e.g. an exchange API. */
  source: string;
  /** The price; finite and positive. */
  price: number;
  /** The traded volume, when known (schema v2). */
  volume?: number;
}

/**
 * An `ad_click` event.
 *
 * ```ts
 * const event = adClick({ advertiserId: "adv-1", ipAddress: "203.0.113.7",
 *   userAgent: "curl/8", referringUrl: "https://example.com/", campaignId: "spring" });
 * ```
 */
export function adClick(input: AdClickInput): Event {
  requireString(input.advertiserId, "ad_click.advertiser_id");
  requireString(input.ipAddress, "ad_click.ip_address");
  requireString(input.userAgent, "ad_click.user_agent");
  requireString(input.referringUrl, "ad_click.referring_url");
  return create(EventSchema, {
    ...envelope("ad_click", input),
    payload: {
      case: "adClick",
      value: {
        advertiserId: input.advertiserId,
        ipAddress: input.ipAddress,
        userAgent: input.userAgent,
        referringUrl: input.referringUrl,
        ...(input.metadata === undefined ? {} : { metadata: jsonObject(input.metadata, "ad_click.metadata") }),
        ...(input.campaignId === undefined ? {} : { campaignId: requireString(input.campaignId, "ad_click.campaign_id") }),
      },
    },
    ...extraFields(input.fields),
  });
}

/**
 * A `price_tick` event.
 *
 * ```ts
 * const event = priceTick({ pair: "ETH-USD", source: "coinbase", price: 3012.5, volume: 1.25 });
 * ```
 */
export function priceTick(input: PriceTickInput): Event {
  requireString(input.pair, "price_tick.pair");
  requireString(input.source, "price_tick.source");
  if (typeof input.price !== "number") {
    throw new InvalidEvent("price_tick.price", "must be a number");
  }
  if (input.volume !== undefined && typeof input.volume !== "number") {
    throw new InvalidEvent("price_tick.volume", "must be a number");
  }
  return create(EventSchema, {
    ...envelope("price_tick", input),
    payload: {
      case: "priceTick",
      value: {
        pair: input.pair,
        source: input.source,
        price: input.price,
        ...(input.volume === undefined ? {} : { volume: input.volume }),
      },
    },
    ...extraFields(input.fields),
  });
}

/**
 * An event of any type as a JSON object, which ingest checks against the
 * Avro schema versions registered for `eventType` (for `ad_click` and
 * `price_tick`: the typed message's fields plus any field of a newer
 * registered version).
 *
 * ```ts
 * const event = generic("signup", { plan: "pro" }, { key: "user-7" });
 * ```
 */
export function generic(eventType: string, fields: Record<string, JsonValue>, options: EnvelopeOptions = {}): Event {
  requireString(eventType, "event_type");
  return create(EventSchema, {
    ...envelope(eventType, options),
    payload: { case: "generic", value: jsonObject(fields, "generic") },
  });
}

function envelope(eventType: string, options: EnvelopeOptions) {
  const idempotencyKey = options.idempotencyKey ?? randomUUID();
  requireString(idempotencyKey, "idempotency_key");
  return {
    eventType,
    key: options.key === undefined ? "" : requireString(options.key, "key"),
    eventTime: toTimestamp(options.eventTime ?? Date.now(), "event_time"),
    idempotencyKey,
  };
}

function extraFields(fields: Record<string, JsonValue> | undefined): { extraFields?: JsonObject } {
  if (fields === undefined || Object.keys(fields).length === 0) return {};
  return { extraFields: jsonObject(fields, "extra_fields") };
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== "string") {
    throw new InvalidEvent(field, `must be a string, not ${value === null ? "null" : typeof value}`);
  }
  return value;
}

/** Checks that `value` is a JSON object protobuf's Struct can carry. */
function jsonObject(value: unknown, field: string): JsonObject {
  if (!isPlainObject(value)) {
    throw new InvalidEvent(field, "must be a JSON object");
  }
  checkJson(value, field);
  return value as JsonObject;
}

function checkJson(value: unknown, path: string): void {
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new InvalidEvent(path, `must be a finite number, not ${value}`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJson(item, `${path}[${i}]`));
    return;
  }
  if (isPlainObject(value)) {
    for (const [key, item] of Object.entries(value)) checkJson(item, `${path}.${key}`);
    return;
  }
  throw new InvalidEvent(path, `is not a JSON value (${typeof value})`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
