// How the SDK names what went wrong: per-event errors, statuses with a
// field, unreachable servers, and connect's URL and key checks.
import assert from "node:assert/strict";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

import {
  codeName,
  connect,
  ConnectionError,
  EventRejected,
  InvalidOptions,
  StatusError,
  TributaryError,
} from "../../dist/index.js";
import { decodeErrorInfo, fromCallError, splitFieldMessage } from "../../dist/errors.js";
import { EventErrorCode, EventErrorSchema } from "../../dist/gen/tributary/v1/ingest_pb.js";

test("an EventError becomes an EventRejected with its code name, field and message", () => {
  const error = EventRejected.fromEventError(
    create(EventErrorSchema, {
      code: EventErrorCode.INVALID_ARGUMENT,
      field: "ad_click.ip_address",
      message: "is not an IPv4 or IPv6 address",
    }),
    "key-1",
  );
  assert.ok(error instanceof TributaryError);
  assert.equal(error.name, "EventRejected");
  assert.equal(error.code, "INVALID_ARGUMENT");
  assert.equal(error.field, "ad_click.ip_address");
  assert.equal(error.reason, "is not an IPv4 or IPv6 address");
  assert.equal(error.message, "ad_click.ip_address: is not an IPv4 or IPv6 address");
  assert.equal(error.idempotencyKey, "key-1");
  const schema = EventRejected.fromEventError(
    create(EventErrorSchema, { code: EventErrorCode.SCHEMA_MISMATCH, field: "", message: "no version fits" }),
  );
  assert.equal(schema.code, "SCHEMA_MISMATCH");
  assert.equal(schema.message, "no version fits");
});

test("gRPC codes are named as gRPC names them", () => {
  assert.equal(codeName(Code.Unauthenticated), "UNAUTHENTICATED");
  assert.equal(codeName(Code.InvalidArgument), "INVALID_ARGUMENT");
  assert.equal(codeName(Code.ResourceExhausted), "RESOURCE_EXHAUSTED");
  assert.equal(codeName(Code.Unavailable), "UNAVAILABLE");
});

test("a `field: reason` message is split, and a field known from details wins", () => {
  assert.deepEqual(splitFieldMessage("page_size: must be at most 10000"), { field: "page_size", reason: "must be at most 10000" });
  assert.deepEqual(splitFieldMessage("ad_click.ip_address: bad: really"), {
    field: "ad_click.ip_address",
    reason: "bad: really",
  });
  assert.deepEqual(splitFieldMessage("missing bearer token"), { field: "", reason: "missing bearer token" });
  assert.deepEqual(splitFieldMessage("a.b: c", "a.b"), { field: "a.b", reason: "c" });
});

/** A google.rpc.ErrorInfo as ingest sends it, encoded by hand. */
function errorInfo(reason, field) {
  const text = (n, s) => {
    const bytes = Buffer.from(s);
    return Buffer.concat([Buffer.from([(n << 3) | 2, bytes.length]), bytes]);
  };
  const entry = Buffer.concat([text(1, "field"), text(2, field)]);
  return new Uint8Array(
    Buffer.concat([text(1, reason), text(2, "tributary.io"), Buffer.from([(3 << 3) | 2, entry.length]), entry]),
  );
}

test("ErrorInfo details are decoded", () => {
  assert.deepEqual(decodeErrorInfo(errorInfo("EVENT_ERROR_CODE_INVALID_ARGUMENT", "price_tick.price")), {
    reason: "EVENT_ERROR_CODE_INVALID_ARGUMENT",
    domain: "tributary.io",
    metadata: { field: "price_tick.price" },
  });
});

test("a unary refusal with ingest's ErrorInfo becomes EventRejected naming the field", () => {
  const status = new ConnectError("price_tick.price: must be finite and positive", Code.InvalidArgument, {
    "content-type": "application/grpc",
  });
  status.details = [{ type: "google.rpc.ErrorInfo", value: errorInfo("EVENT_ERROR_CODE_INVALID_ARGUMENT", "price_tick.price") }];
  const error = fromCallError(status, "http://127.0.0.1:50051", "k");
  assert.ok(error instanceof EventRejected, String(error));
  assert.equal(error.code, "INVALID_ARGUMENT");
  assert.equal(error.field, "price_tick.price");
  assert.equal(error.reason, "must be finite and positive");
  assert.equal(error.idempotencyKey, "k");
});

test("a status the server sent becomes a StatusError; a failure to connect a ConnectionError naming the URL", () => {
  const query = fromCallError(
    new ConnectError("page_size: must be at most 10000", Code.InvalidArgument, { "grpc-status": "3" }),
    "http://127.0.0.1:50051",
  );
  assert.ok(query instanceof StatusError);
  assert.equal(query.code, "INVALID_ARGUMENT");
  assert.equal(query.field, "page_size");
  assert.equal(query.message, "page_size: must be at most 10000");
  const auth = fromCallError(new ConnectError("missing API key", Code.Unauthenticated, { "www-authenticate": "Bearer" }), "u");
  assert.ok(auth instanceof StatusError);
  assert.equal(auth.code, "UNAUTHENTICATED");
  assert.equal(auth.field, "");

  const refused = fromCallError(new ConnectError("connect ECONNREFUSED 127.0.0.1:1", Code.Unavailable), "http://127.0.0.1:1");
  assert.ok(refused instanceof ConnectionError);
  assert.equal(refused.code, "UNAVAILABLE");
  assert.equal(refused.url, "http://127.0.0.1:1");
  assert.match(refused.message, /^cannot reach ingest at http:\/\/127\.0\.0\.1:1: UNAVAILABLE: connect ECONNREFUSED/);
});

test("connect refuses URLs, keys and CAs it cannot use", () => {
  const refuses = (build, field) =>
    assert.throws(build, (error) => error instanceof InvalidOptions && error.field === field && error.message.startsWith(`${field}: `));
  refuses(() => connect("127.0.0.1:50051"), "url");
  refuses(() => connect("ftp://127.0.0.1:50051"), "url");
  refuses(() => connect("http://127.0.0.1:50051/api"), "url");
  refuses(() => connect("http://127.0.0.1:50051", { apiKey: "two words" }), "apiKey");
  refuses(() => connect("http://127.0.0.1:50051", { apiKey: "a\nb" }), "apiKey");
  refuses(() => connect("http://127.0.0.1:50051", { ca: "PEM" }), "ca");
  const client = connect("https://ingest.example.com:443", { apiKey: "k", ca: "-----BEGIN CERTIFICATE-----" });
  assert.equal(client.url, "https://ingest.example.com:443");
  assert.equal(connect().url, "http://127.0.0.1:50051");
});
