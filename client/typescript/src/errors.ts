// The SDK's errors. Every error it throws or rejects with is a
// TributaryError with a `code` (a stable, upper-case name), a `field` (the
// path of the offending field, "" when the error is not about one field) and
// a human-readable `message`.
import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

import { EventErrorCode, type EventError } from "./gen/tributary/v1/ingest_pb.js";

/** The base class of every error of the SDK. */
export class TributaryError extends Error {
  /** A stable name of the kind of error, e.g. `INVALID_ARGUMENT`, `UNAVAILABLE`. */
  readonly code: string;
  /** The path of the offending field, e.g. `ad_click.ip_address`; "" when none. */
  readonly field: string;

  constructor(code: string, field: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.field = field;
  }
}

/** The codes of per-event errors (`EventErrorCode` without its prefix). */
export type EventErrorCodeName =
  | "UNSPECIFIED"
  | "INVALID_ARGUMENT"
  | "UNKNOWN_EVENT_TYPE"
  | "SCHEMA_MISMATCH"
  | "TOO_LARGE"
  | "UNAVAILABLE"
  | "INTERNAL";

/** The name of an `EventErrorCode`, e.g. `INVALID_ARGUMENT`. */
export function eventErrorCodeName(code: EventErrorCode): EventErrorCodeName {
  const name = EventErrorCode[code] as string | undefined;
  switch (name) {
    case "INVALID_ARGUMENT":
    case "UNKNOWN_EVENT_TYPE":
    case "SCHEMA_MISMATCH":
    case "TOO_LARGE":
    case "UNAVAILABLE":
    case "INTERNAL":
      return name;
    default:
      return "UNSPECIFIED";
  }
}

/**
 * Ingest refused the event: it was not stored, and sending it again would
 * fail again. `code` is the event error code (`INVALID_ARGUMENT`,
 * `SCHEMA_MISMATCH`, `UNKNOWN_EVENT_TYPE`, `TOO_LARGE`, ...), `field` the
 * offending field (e.g. `ad_click.ip_address`), `reason` the server's reason
 * without the field.
 */
export class EventRejected extends TributaryError {
  readonly reason: string;
  /** The event's idempotency key, when known. */
  readonly idempotencyKey: string;

  constructor(code: string, field: string, reason: string, idempotencyKey = "") {
    super(code, field, field === "" ? reason : `${field}: ${reason}`);
    this.reason = reason;
    this.idempotencyKey = idempotencyKey;
  }

  /** The rejection an `EventError` of a stream or batch result stands for. */
  static fromEventError(error: EventError, idempotencyKey = ""): EventRejected {
    return new EventRejected(eventErrorCodeName(error.code), error.field, error.message, idempotencyKey);
  }
}

/** An event that cannot be built or sent as given; nothing was sent. */
export class InvalidEvent extends TributaryError {
  constructor(field: string, reason: string) {
    super("INVALID_ARGUMENT", field, field === "" ? reason : `${field}: ${reason}`);
  }
}

/** The options given to `connect` cannot be used (URL, API key, CA). */
export class InvalidOptions extends TributaryError {
  constructor(field: string, reason: string) {
    super("INVALID_ARGUMENT", field, `${field}: ${reason}`);
  }
}

/**
 * Ingest (or the query API) could not be reached at `url`: nothing is
 * listening there, the TLS handshake failed, or the connection broke before
 * an answer. The message names the address.
 */
export class ConnectionError extends TributaryError {
  readonly url: string;
  /** What the last attempt failed with. */
  readonly last: string;

  constructor(url: string, last: string, options?: { cause?: unknown }) {
    super("UNAVAILABLE", "", `cannot reach ingest at ${url}: ${last}`, options);
    this.url = url;
    this.last = last;
  }
}

/**
 * The sender gave up: for `giveUpAfterMs` it kept reconnecting and no event
 * was answered. The unanswered events may or may not have been stored;
 * sending them again with the same idempotency keys is safe.
 */
export class GaveUp extends TributaryError {
  readonly attempts: number;
  readonly last: string;

  constructor(attempts: number, last: string) {
    super("UNAVAILABLE", "", `gave up after ${attempts} attempts to reach ingest: ${last}`);
    this.attempts = attempts;
    this.last = last;
  }
}

/**
 * A call failed with a gRPC status, e.g. UNAUTHENTICATED (no or a wrong API
 * key) or INVALID_ARGUMENT (a bad query parameter, named in `field`).
 * `code` is the status code's name (`UNAUTHENTICATED`, `INVALID_ARGUMENT`,
 * ...).
 */
export class StatusError extends TributaryError {
  /** The numeric gRPC status code. */
  readonly grpcCode: Code;
  /** The server's message without the field. */
  readonly reason: string;

  constructor(grpcCode: Code, field: string, reason: string, options?: { cause?: unknown }) {
    super(codeName(grpcCode), field, field === "" ? reason : `${field}: ${reason}`, options);
    this.grpcCode = grpcCode;
    this.reason = reason;
  }
}

/** The sender was closed before the event was answered. */
export class SenderClosed extends TributaryError {
  constructor() {
    super("CLOSED", "", "the sender is closed");
  }
}

/** The upper-case gRPC name of `code`, e.g. `UNAUTHENTICATED`. */
export function codeName(code: Code): string {
  const name = Code[code] as string | undefined;
  if (name === undefined) return "UNKNOWN";
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * Splits a status message of the form `field: reason` (how ingest and the
 * query API name a field) into its parts; `knownField` (from the error
 * details) wins when given.
 */
export function splitFieldMessage(message: string, knownField = ""): { field: string; reason: string } {
  if (knownField !== "") {
    const prefix = `${knownField}: `;
    return { field: knownField, reason: message.startsWith(prefix) ? message.slice(prefix.length) : message };
  }
  const match = /^([A-Za-z_][A-Za-z0-9_.[\]]*): (.*)$/s.exec(message);
  if (match !== null && match[1] !== undefined && match[2] !== undefined) {
    return { field: match[1], reason: match[2] };
  }
  return { field: "", reason: message };
}

/** The `google.rpc.ErrorInfo` of an error's details: reason and metadata. */
export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

const ERROR_INFO = "google.rpc.ErrorInfo";

/** Decodes a `google.rpc.ErrorInfo` (reason = 1, domain = 2, metadata = 3). */
export function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  const reader = new BinaryReader(bytes);
  const info: ErrorInfo = { reason: "", domain: "", metadata: {} };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      info.reason = reader.string();
    } else if (field === 2 && wireType === WireType.LengthDelimited) {
      info.domain = reader.string();
    } else if (field === 3 && wireType === WireType.LengthDelimited) {
      const entry = new BinaryReader(reader.bytes());
      let key = "";
      let value = "";
      while (entry.pos < entry.len) {
        const [f, w] = entry.tag();
        if (f === 1 && w === WireType.LengthDelimited) key = entry.string();
        else if (f === 2 && w === WireType.LengthDelimited) value = entry.string();
        else entry.skip(w);
      }
      info.metadata[key] = value;
    } else {
      reader.skip(wireType);
    }
  }
  return info;
}

/** The `ErrorInfo` among a ConnectError's details, if any. */
export function errorInfoOf(error: ConnectError): ErrorInfo | undefined {
  for (const detail of error.details) {
    if ("desc" in detail) continue; // outgoing
    if (detail.type === ERROR_INFO) {
      try {
        return decodeErrorInfo(detail.value);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

const EVENT_ERROR_PREFIX = "EVENT_ERROR_CODE_";

/**
 * Maps an error of a unary call to the SDK's errors: a refused event
 * (ingest's ErrorInfo names an `EVENT_ERROR_CODE_*`) becomes
 * `EventRejected`; an unreachable server a `ConnectionError` naming `url`;
 * any other status a `StatusError` with the field of a `field: reason`
 * message. TributaryErrors pass through.
 */
export function fromCallError(error: unknown, url: string, idempotencyKey = ""): TributaryError {
  if (error instanceof TributaryError) return error;
  const connectError = ConnectError.from(error);
  const info = errorInfoOf(connectError);
  const knownField = info?.metadata["field"] ?? "";
  const { field, reason } = splitFieldMessage(connectError.rawMessage, knownField);
  if (info !== undefined && info.reason.startsWith(EVENT_ERROR_PREFIX) && info.reason !== "EVENT_ERROR_CODE_UNAVAILABLE") {
    return new EventRejected(info.reason.slice(EVENT_ERROR_PREFIX.length), field, reason, idempotencyKey);
  }
  if (isConnectionFailure(connectError)) {
    return new ConnectionError(url, describeConnectError(connectError), { cause: error });
  }
  return new StatusError(connectError.code, field, reason, { cause: error });
}

/**
 * Whether the error says the server was never reached (refused, reset, DNS,
 * TLS) rather than answering with a status.
 */
export function isConnectionFailure(error: ConnectError): boolean {
  if (error.code !== Code.Unavailable && error.code !== Code.Unknown && error.code !== Code.Internal) {
    return false;
  }
  // A status the server sent carries its headers or trailers; a failure to
  // connect has no metadata at all.
  let hasMetadata = false;
  error.metadata.forEach(() => {
    hasMetadata = true;
  });
  return !hasMetadata;
}

/** A one-line description of a ConnectError: its code, message and cause. */
export function describeConnectError(error: ConnectError): string {
  let text = `${codeName(error.code)}: ${error.rawMessage}`;
  const cause = error.cause;
  if (cause instanceof Error && cause.message !== "" && !text.includes(cause.message)) {
    text += ` (${cause.message})`;
  }
  return text;
}
