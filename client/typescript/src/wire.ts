// SubmitEvents' wire format, as the Rust SDK speaks it (client/src/sender.rs,
// proto/src/stream_results.rs): events go many to a message
// (`SubmitEventsRequest.events`, at most 1024 events and 64 KiB; an event
// larger than that alone), and every response reads back as one result per
// event, in index order: a one-event `result`, or `acked` runs and `errors`
// merged.
//
// Each event is encoded once, when it is sent: a message carries the encoded
// events as the raw entries of its `events` field (what protobuf-es writes
// for `$unknown` fields is exactly their bytes), so neither building a
// message nor resending after a reconnect encodes an event again.
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

import { type Ack } from "./ack.js";
import type { Event } from "./events.js";
import { EventSchema } from "./gen/tributary/v1/event_pb.js";
import {
  type EventError,
  type EventResult,
  type SubmitEventsRequest,
  SubmitEventsRequestSchema,
  type SubmitEventsResponse,
} from "./gen/tributary/v1/ingest_pb.js";

/** The most events the sender puts in one message. */
export const MAX_EVENTS_PER_MESSAGE = 1024;
/** The size a message of many events is kept under (an event larger than that goes alone). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** `SubmitEventsRequest.events`' field number. */
const EVENTS_FIELD = 2;

/**
 * `event` encoded as an entry of `SubmitEventsRequest.events`, without its
 * tag: the length, then the event. Its field is one byte (the tag) longer.
 */
export function encodeEvent(event: Event): Uint8Array {
  return new BinaryWriter().bytes(toBinary(EventSchema, event)).finish();
}

/** The message carrying `entries` (from `encodeEvent`) in `events`, in order. */
export function eventsMessage(entries: readonly Uint8Array[]): SubmitEventsRequest {
  const message = create(SubmitEventsRequestSchema);
  message.$unknown = entries.map((data) => ({ no: EVENTS_FIELD, wireType: WireType.LengthDelimited, data }));
  return message;
}

/**
 * How many of `entries`, from `start`, go in the next message: at least one,
 * then as many as keep it within `MAX_EVENTS_PER_MESSAGE` events and
 * `MAX_MESSAGE_BYTES` encoded.
 */
export function fitting(entries: readonly Uint8Array[], start: number): number {
  let bytes = 0;
  let count = 0;
  for (let i = start; i < entries.length && count < MAX_EVENTS_PER_MESSAGE; i++) {
    const field = 1 + (entries[i] as Uint8Array).length;
    if (count > 0 && bytes + field > MAX_MESSAGE_BYTES) break;
    bytes += field;
    count += 1;
  }
  return count;
}

/** `entries` as messages of many events, in order (see `fitting`). */
export function messages(entries: readonly Uint8Array[]): SubmitEventsRequest[] {
  const out: SubmitEventsRequest[] = [];
  for (let start = 0; start < entries.length; ) {
    const count = fitting(entries, start);
    out.push(eventsMessage(entries.slice(start, start + count)));
    start += count;
  }
  return out;
}

/** One event's result read from a response: an ack, an error, or neither. */
export type StreamResult =
  | { index: bigint; case: "ack"; ack: Ack }
  | { index: bigint; case: "error"; error: EventError }
  | { index: bigint; case: undefined };

function fromEventResult(result: EventResult): StreamResult {
  const outcome = result.outcome;
  if (outcome.case === "ack") {
    const { topic, partition, offset, schemaId } = outcome.value;
    return { index: result.index, case: "ack", ack: { topic, partition, offset, schemaId } };
  }
  if (outcome.case === "error") return { index: result.index, case: "error", error: outcome.value };
  return { index: result.index, case: undefined };
}

/**
 * The results `response` carries, one per event, in index order: its
 * `result` (the answer to a one-event message), or its `acked` runs (event
 * `firstIndex + i` at `partitions[i]`, `offsets[i]`) and its `errors` merged.
 */
export function results(response: SubmitEventsResponse): StreamResult[] {
  const out: StreamResult[] = [];
  if (response.result !== undefined) out.push(fromEventResult(response.result));
  for (const run of response.acked) {
    const { topic, schemaId, partitions, offsets } = run;
    const count = Math.min(partitions.length, offsets.length);
    let index = run.firstIndex;
    for (let i = 0; i < count; i++) {
      out.push({
        index,
        case: "ack",
        ack: { topic, partition: partitions[i] as number, offset: offsets[i] as bigint, schemaId },
      });
      index += 1n;
    }
  }
  for (const error of response.errors) out.push(fromEventResult(error));
  return out.sort((a, b) => (a.index < b.index ? -1 : a.index > b.index ? 1 : 0));
}
