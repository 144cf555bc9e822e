// Connecting to ingest: `connect(url, options)` turns a URL, an optional API
// key and an optional private CA into a Client. Calls speak gRPC over
// HTTP/2 (Connect's Node transport); the connection is made on first use and
// remade by itself after ingest restarts, so a Client outlives them.
import { rootCertificates } from "node:tls";

import { type Client as ServiceClient, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { type Ack, toAck } from "./ack.js";
import { EventRejected, fromCallError, InvalidOptions } from "./errors.js";
import type { Event } from "./events.js";
import { IngestService } from "./gen/tributary/v1/ingest_pb.js";
import { QueryService } from "./gen/tributary/v1/query_pb.js";
import {
  type AggregatesRequest,
  AggregatePages,
  type PriceAccuracy,
  type PriceAccuracyRequest,
  priceAccuracyRequest,
  toPriceAccuracy,
} from "./query.js";
import { Sender, type SenderOptions } from "./sender.js";

/** The default gRPC endpoint of the local stack (`dev/up`). */
export const DEFAULT_URL = "http://127.0.0.1:50051";

/** How to reach ingest. */
export interface ConnectOptions {
  /** Sent as `authorization: Bearer <key>` on every call. */
  apiKey?: string;
  /**
   * A PEM CA certificate (or several) to trust for an `https://` URL, besides
   * Node's built-in roots: for a private or self-signed server certificate.
   */
  ca?: string | Buffer;
  /** The name the server certificate must carry, when it differs from the URL's host. */
  servername?: string;
  /** The deadline of unary calls (queries, `submit`), in milliseconds (default 30 s). */
  timeoutMs?: number;
}

/**
 * A Client for the ingest and query API at `url` (`http://host:port` or
 * `https://host:port`). Nothing is connected yet: the first call connects.
 *
 * ```ts
 * const client = connect("http://127.0.0.1:50051", { apiKey: process.env.TRIBUTARY_API_KEY });
 * ```
 */
export function connect(url: string = DEFAULT_URL, options: ConnectOptions = {}): Client {
  return new Client(url, options);
}

/** A connection to ingest and the query API; see `connect`. */
export class Client {
  /** The endpoint, as given. */
  readonly url: string;
  /** The generated `IngestService` client (unary, batch and stream calls). */
  readonly ingest: ServiceClient<typeof IngestService>;
  /** The generated `QueryService` client. */
  readonly query: ServiceClient<typeof QueryService>;
  readonly #sessions: Http2SessionManager;
  readonly #timeoutMs: number;

  constructor(url: string, options: ConnectOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new InvalidOptions("url", `${JSON.stringify(url)} is not a URL such as http://127.0.0.1:50051`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new InvalidOptions("url", `${url} must start with http:// or https://`);
    }
    if (parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "") {
      throw new InvalidOptions("url", `${url} must be only a scheme, a host and a port`);
    }
    const tls = parsed.protocol === "https:";
    if (options.ca !== undefined && !tls) {
      throw new InvalidOptions("ca", `a CA is only used with an https:// URL, not ${url}`);
    }
    const interceptors: Interceptor[] = [];
    if (options.apiKey !== undefined) {
      if (options.apiKey === "" || !/^[\x21-\x7e]+$/.test(options.apiKey)) {
        throw new InvalidOptions("apiKey", "must be non-empty printable ASCII without spaces");
      }
      const value = `Bearer ${options.apiKey}`;
      interceptors.push((next) => (request) => {
        request.header.set("authorization", value);
        return next(request);
      });
    }
    this.url = url;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    const nodeOptions = tls
      ? {
          ...(options.ca === undefined ? {} : { ca: [...rootCertificates, options.ca.toString()] }),
          ...(options.servername === undefined ? {} : { servername: options.servername }),
        }
      : {};
    this.#sessions = new Http2SessionManager(
      parsed.origin,
      // Like the Rust SDK: a ping every 10 s on busy connections, and one
      // that is not answered in 5 s drops the connection.
      { pingIntervalMs: 10_000, pingTimeoutMs: 5_000 },
      nodeOptions,
    );
    const transport: Transport = createGrpcTransport({
      baseUrl: parsed.origin,
      interceptors,
      sessionManager: this.#sessions,
    });
    this.ingest = createClient(IngestService, transport);
    this.query = createClient(QueryService, transport);
  }

  /**
   * Starts a streaming sender on one `SubmitEvents` call; see `Sender`.
   *
   * ```ts
   * const sender = client.sender({ window: 256 });
   * const pending = await sender.send(priceTick({ pair: "ETH-USD", source: "coinbase", price: 3012.5 }));
   * console.log(await pending.ack);
   * await sender.close();
   * ```
   */
  sender(options: SenderOptions = {}): Sender {
    return new Sender(this.ingest, this.url, options);
  }

  /**
   * Submits one event with the unary `SubmitEvent` call: resolves with its
   * Ack, rejects with `EventRejected` naming the field when ingest refuses
   * it, a `ConnectionError` when ingest cannot be reached.
   */
  async submit(event: Event): Promise<Ack> {
    try {
      const response = await this.ingest.submitEvent({ event }, { timeoutMs: this.#timeoutMs });
      return toAck(response.ack);
    } catch (error) {
      throw fromCallError(error, this.url, event.idempotencyKey);
    }
  }

  /**
   * Submits events with one `SubmitBatch` call: one entry per event, in
   * order, an Ack or the EventRejected saying why it was refused.
   */
  async submitBatch(events: Event[]): Promise<Array<Ack | EventRejected>> {
    try {
      const response = await this.ingest.submitBatch({ events }, { timeoutMs: this.#timeoutMs });
      return response.results.map((result, i) =>
        result.outcome.case === "error"
          ? EventRejected.fromEventError(result.outcome.value, events[i]?.idempotencyKey ?? "")
          : toAck(result.outcome.value),
      );
    } catch (error) {
      throw fromCallError(error, this.url);
    }
  }

  /**
   * The aggregates of one event type over `[start, end)`, following page
   * tokens: iterate with `for await`, or `.toArray()`, or `.pages()`.
   *
   * ```ts
   * for await (const a of client.aggregates({ eventType: "ad_click", start: Date.now() - 3600_000, end: Date.now() })) {
   *   console.log(a.key, a.windowStart, a.count, a.distinctCount);
   * }
   * ```
   */
  aggregates(request: AggregatesRequest): AggregatePages {
    return new AggregatePages(this.query, this.url, request, this.#timeoutMs);
  }

  /**
   * Per pair, bucket and source: how far the source's average price is from
   * the mean of the other sources (`GetPriceAccuracy`).
   */
  async priceAccuracy(request: PriceAccuracyRequest): Promise<PriceAccuracy[]> {
    const message = priceAccuracyRequest(request);
    try {
      const response = await this.query.getPriceAccuracy(message, { timeoutMs: this.#timeoutMs });
      return response.accuracy.map(toPriceAccuracy);
    } catch (error) {
      throw fromCallError(error, this.url);
    }
  }

  /** Closes the connection; calls after this open a new one. */
  close(): void {
    this.#sessions.abort();
  }
}
