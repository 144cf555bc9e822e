// Times and durations as the SDK takes them (Date, epoch milliseconds, RFC
// 3339 text; "1m"-style durations) and as protobuf carries them.
import { create } from "@bufbuild/protobuf";
import {
  type Duration,
  DurationSchema,
  type Timestamp,
  timestampDate,
  timestampFromMs,
} from "@bufbuild/protobuf/wkt";

import { InvalidEvent } from "./errors.js";

/** A point in time: a Date, milliseconds since the Unix epoch, or RFC 3339 text. */
export type TimeInput = Date | number | string;

/** A length of time: milliseconds, or text such as `500ms`, `30s`, `1m`, `1h`, `1d`. */
export type DurationInput = number | string;

/** Milliseconds since the epoch of `at`; throws `InvalidEvent` naming `field`. */
export function toMillis(at: TimeInput, field: string): number {
  let ms: number;
  if (at instanceof Date) {
    ms = at.getTime();
  } else if (typeof at === "number") {
    ms = at;
  } else if (typeof at === "string") {
    // RFC 3339 requires an offset: text without one would be read as the
    // local time of whichever machine runs the code.
    if (!/(Z|[+-]\d{2}:\d{2})$/i.test(at.trim())) {
      throw new InvalidEvent(field, `\`${at}\` has no time zone offset (RFC 3339 needs Z or ±hh:mm)`);
    }
    ms = Date.parse(at);
  } else {
    throw new InvalidEvent(field, "must be a Date, epoch milliseconds or RFC 3339 text");
  }
  if (!Number.isFinite(ms)) {
    throw new InvalidEvent(field, `is not a valid time: ${String(at)}`);
  }
  return Math.trunc(ms);
}

/** A protobuf Timestamp of `at`. */
export function toTimestamp(at: TimeInput, field: string): Timestamp {
  return timestampFromMs(toMillis(at, field));
}

/** The Date of a protobuf Timestamp (the epoch when absent). */
export function fromTimestamp(timestamp: Timestamp | undefined): Date {
  return timestamp === undefined ? new Date(0) : timestampDate(timestamp);
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Milliseconds of `duration`; throws `InvalidEvent` naming `field`. */
export function toDurationMillis(duration: DurationInput, field: string): number {
  if (typeof duration === "number") {
    if (!Number.isFinite(duration) || duration <= 0) {
      throw new InvalidEvent(field, `must be a positive number of milliseconds, not ${duration}`);
    }
    return Math.trunc(duration);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(String(duration));
  if (match === null || match[1] === undefined || match[2] === undefined) {
    throw new InvalidEvent(field, `must be a duration such as 30s, 1m, 1h or 1d, not ${JSON.stringify(duration)}`);
  }
  const ms = Number(match[1]) * (UNITS[match[2]] ?? 1);
  if (ms <= 0) {
    throw new InvalidEvent(field, `must be positive, not ${duration}`);
  }
  return Math.trunc(ms);
}

/** A protobuf Duration of `duration`. */
export function toDuration(duration: DurationInput, field: string): Duration {
  const ms = toDurationMillis(duration, field);
  return create(DurationSchema, {
    seconds: BigInt(Math.floor(ms / 1000)),
    nanos: (ms % 1000) * 1_000_000,
  });
}
