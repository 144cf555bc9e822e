// The streaming sender: one SubmitEvents stream carrying events as fast as
// ingest takes them, with every event's answer delivered to its caller.
//
// At most `window` events are sent and not yet answered; `send()` waits for
// room, which is the sender's backpressure. Each event carries an
// idempotency key (one is assigned when it has none). When the stream fails
// (ingest restarted, the connection dropped, an event answered
// UNAVAILABLE) the sender reconnects with exponential backoff and sends
// every unanswered event again, in order, with its original idempotency
// key: nothing acknowledged is lost and the processor counts a resent event
// once. Answers arrive in the order events were sent.
//
// Events go many to a message (`SubmitEventsRequest.events`): whatever is
// queued when the transport is ready for the next message, up to 64 KiB and
// 1024 events (an event larger than that goes alone), so a sender that keeps
// up sends each event at once and a busy one sends far fewer, larger
// messages. Ingest answers them compactly (`acked` runs and `errors`), read
// back one result per event (`wire.ts`). The same as the Rust SDK's sender.
import { randomUUID } from "node:crypto";

import { type Client as ServiceClient, Code, ConnectError } from "@connectrpc/connect";

import type { Ack } from "./ack.js";
import { Channel } from "./channel.js";
import {
  ConnectionError,
  describeConnectError,
  EventRejected,
  fromCallError,
  GaveUp,
  InvalidEvent,
  SenderClosed,
  TributaryError,
} from "./errors.js";
import type { Event } from "./events.js";
import { EventErrorCode, IngestService, type SubmitEventsRequest } from "./gen/tributary/v1/ingest_pb.js";
import { encodeEvent, eventsMessage, fitting, results } from "./wire.js";

/** How a Sender behaves. */
export interface SenderOptions {
  /** The most events that may be sent and not yet answered (default 1024). */
  window?: number;
  /**
   * How long the sender keeps reconnecting without any event being answered
   * before it gives up and rejects the unanswered events with `GaveUp`
   * (default 60 s).
   */
  giveUpAfterMs?: number;
  /**
   * How long the sender tries to reach ingest when it has never reached it:
   * a stack that is not running is reported quickly, with a
   * `ConnectionError` naming the address (default 5 s). Once reached,
   * `giveUpAfterMs` applies.
   */
  firstConnectTimeoutMs?: number;
  /** How long one attempt may wait for ingest to accept the stream (default 5 s). */
  connectTimeoutMs?: number;
  /** The first pause before reconnecting; doubled after each failure, with jitter (default 100 ms). */
  initialBackoffMs?: number;
  /** The longest pause before reconnecting (default 5 s). */
  maxBackoffMs?: number;
  /** Called before each reconnection, e.g. to log it. */
  onReconnect?: (info: ReconnectInfo) => void;
}

/** What `onReconnect` is told. */
export interface ReconnectInfo {
  /** Why the last stream ended. */
  reason: string;
  /** How long the sender waits before the next attempt. */
  delayMs: number;
  /** How many events will be sent again. */
  unanswered: number;
  /** How many streams were opened so far. */
  attempts: number;
}

/** The counts of a sender so far. */
export interface SenderStats {
  /** Events handed to `send()` and queued. */
  sent: number;
  /** Events acknowledged. */
  acked: number;
  /** Events refused by ingest (EventRejected). */
  rejected: number;
  /** Events sent again on a new stream (one ingest accepted) after the previous one failed. */
  resent: number;
  /** Streams opened. */
  attempts: number;
  /** Streams that failed and were reopened. */
  reconnects: number;
  /** Events sent and not yet answered. */
  unanswered: number;
}

/** The answer to one sent event. */
export interface Pending {
  /** The event's idempotency key (assigned by the sender when it had none). */
  readonly idempotencyKey: string;
  /**
   * Resolves with where the event was stored; rejects with `EventRejected`
   * (code, field, message) when ingest refused it, or with the sender's
   * failure (`GaveUp`, `ConnectionError`, `StatusError`) when it could not be
   * delivered.
   */
  readonly ack: Promise<Ack>;
}

interface InFlight {
  readonly event: Event;
  /** The event encoded once, as an entry of `SubmitEventsRequest.events`. */
  readonly data: Uint8Array;
  readonly resolve: (ack: Ack) => void;
  readonly reject: (error: TributaryError) => void;
}

type StreamEnd =
  | { kind: "done" }
  | { kind: "retry"; reason: string }
  | { kind: "fatal"; error: TributaryError };

/**
 * Statuses that say the request itself is wrong end the sender; anything
 * else (unreachable, restarting, overloaded, reset) is retried.
 */
const FATAL = new Set<Code>([
  Code.InvalidArgument,
  Code.Unauthenticated,
  Code.PermissionDenied,
  Code.Unimplemented,
  Code.FailedPrecondition,
  Code.OutOfRange,
  Code.NotFound,
  Code.AlreadyExists,
]);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Streams events to ingest over one SubmitEvents call; see `client.sender()`.
 *
 * ```ts
 * const sender = client.sender({ window: 512 });
 * const answers = [];
 * for (const price of [3010, 3011.5, 3009.25]) {
 *   answers.push((await sender.send(priceTick({ pair: "ETH-USD", source: "coinbase", price }))).ack);
 * }
 * await sender.close();
 * console.log(await Promise.allSettled(answers));
 * ```
 */
export class Sender {
  readonly #ingest: ServiceClient<typeof IngestService>;
  readonly #url: string;
  readonly #window: number;
  readonly #giveUpAfterMs: number;
  readonly #firstConnectTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #onReconnect: ((info: ReconnectInfo) => void) | undefined;

  /** Sent (or to be sent) and not answered, in order. */
  #unanswered: InFlight[] = [];
  #head = 0;
  /** Free places in the window, and the sends waiting for one (FIFO). */
  #room: number;
  #waiters: Array<{ resolve: () => void; reject: (error: TributaryError) => void }> = [];
  /** The request side of the current stream, while one is open. */
  #channel: Channel<Uint8Array, SubmitEventsRequest> | undefined;
  /** How many events the last stream left unanswered (every one was pushed to it). */
  #leftUnanswered = 0;
  #closing = false;
  #failure: TributaryError | undefined;
  #task: Promise<void> | undefined;
  #wakeup: (() => void) | undefined;
  #stats: SenderStats = { sent: 0, acked: 0, rejected: 0, resent: 0, attempts: 0, reconnects: 0, unanswered: 0 };

  constructor(ingest: ServiceClient<typeof IngestService>, url: string, options: SenderOptions = {}) {
    this.#ingest = ingest;
    this.#url = url;
    this.#window = Math.max(1, Math.trunc(options.window ?? 1024));
    this.#giveUpAfterMs = options.giveUpAfterMs ?? 60_000;
    this.#firstConnectTimeoutMs = options.firstConnectTimeoutMs ?? 5_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.#initialBackoffMs = options.initialBackoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.#onReconnect = options.onReconnect;
    this.#room = this.#window;
  }

  /** The counts so far. */
  stats(): SenderStats {
    return { ...this.#stats, unanswered: this.#pending() };
  }

  /**
   * Queues `event`, waiting while `window` events are unanswered, and
   * resolves with its `Pending` answer. An event without an idempotency key
   * gets a random one, so a resend is counted once. Rejects at once when the
   * sender is closed or has failed.
   */
  async send(event: Event): Promise<Pending> {
    this.#checkOpen();
    const queued = event.idempotencyKey ? event : { ...event, idempotencyKey: randomUUID() };
    let data: Uint8Array;
    try {
      data = encodeEvent(queued);
    } catch (error) {
      throw new InvalidEvent("", `cannot be encoded: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (this.#room > 0 && this.#waiters.length === 0) {
      this.#room -= 1;
    } else {
      await new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    }
    try {
      this.#checkOpen();
    } catch (error) {
      this.#release();
      throw error;
    }
    let resolve!: (ack: Ack) => void;
    let reject!: (error: TributaryError) => void;
    const ack = new Promise<Ack>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A caller that never looks at an answer must not crash the process
    // with an unhandled rejection; one that awaits it still gets the error.
    ack.catch(() => {});
    this.#unanswered.push({ event: queued, data, resolve, reject });
    this.#stats.sent += 1;
    this.#channel?.push(data);
    this.#task ??= this.#run();
    this.#wake();
    return { idempotencyKey: queued.idempotencyKey, ack };
  }

  /** Sends `event` and waits for its answer: `(await send(event)).ack`. */
  async sendAndWait(event: Event): Promise<Ack> {
    return (await this.send(event)).ack;
  }

  /**
   * Stops taking events and waits until every sent event is answered.
   * Rejects when the sender gave up (`GaveUp`), never reached ingest
   * (`ConnectionError`) or met a status no retry can fix (`StatusError`,
   * e.g. UNAUTHENTICATED). Sends still waiting for room reject with
   * `SenderClosed`.
   */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      for (const waiter of this.#waiters.splice(0)) waiter.reject(new SenderClosed());
      this.#channel?.close(); // half-close: ingest answers the rest and ends the stream
      this.#wake();
    }
    if (this.#task !== undefined) await this.#task;
    if (this.#failure !== undefined) throw this.#failure;
  }

  #checkOpen(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closing) throw new SenderClosed();
  }

  #pending(): number {
    return this.#unanswered.length - this.#head;
  }

  #first(): InFlight | undefined {
    return this.#unanswered[this.#head];
  }

  #shift(): InFlight | undefined {
    const first = this.#unanswered[this.#head];
    if (first === undefined) return undefined;
    this.#head += 1;
    if (this.#head >= 1024 && this.#head * 2 >= this.#unanswered.length) {
      this.#unanswered = this.#unanswered.slice(this.#head);
      this.#head = 0;
    }
    this.#release();
    return first;
  }

  #release(): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter.resolve();
    else this.#room += 1;
  }

  #wake(): void {
    const wakeup = this.#wakeup;
    this.#wakeup = undefined;
    wakeup?.();
  }

  /** Rejects every unanswered event and waiting send with `error`, for good. */
  #fail(error: TributaryError): void {
    this.#failure = error;
    for (const inFlight of this.#unanswered.slice(this.#head)) inFlight.reject(error);
    this.#unanswered = [];
    this.#head = 0;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  async #run(): Promise<void> {
    try {
      await this.#loop();
    } catch (error) {
      const failure =
        error instanceof TributaryError ? error : new TributaryError("INTERNAL", "", `the sender failed: ${String(error)}`);
      this.#fail(failure);
    }
  }

  async #loop(): Promise<void> {
    // From the first attempt, not from creation: a sender may wait long for
    // its first event.
    let firstAttempt: number | undefined;
    let reached = false;
    let failingSince: number | undefined;
    let backoff = this.#initialBackoffMs;
    for (;;) {
      if (this.#pending() === 0) {
        // Open a stream only when there is something to send.
        if (this.#closing) return;
        await new Promise<void>((resolve) => {
          this.#wakeup = resolve;
        });
        continue;
      }
      this.#stats.attempts += 1;
      firstAttempt ??= Date.now();
      const state: { answered: boolean; reached: boolean } = { answered: false, reached };
      const end = await this.#stream(state);
      reached = state.reached;
      if (end.kind === "done") return;
      if (end.kind === "fatal") {
        this.#fail(end.error);
        return;
      }
      if (state.answered) {
        failingSince = undefined;
        backoff = this.#initialBackoffMs;
      }
      const now = Date.now();
      if (!reached && now - firstAttempt >= this.#firstConnectTimeoutMs) {
        this.#fail(new ConnectionError(this.#url, end.reason));
        return;
      }
      failingSince ??= now;
      if (now - failingSince >= this.#giveUpAfterMs) {
        this.#fail(new GaveUp(this.#stats.attempts, end.reason));
        return;
      }
      let delay = Math.min(backoff + Math.random() * backoff, this.#maxBackoffMs);
      if (!reached) delay = Math.min(delay, Math.max(0, firstAttempt + this.#firstConnectTimeoutMs - now));
      backoff = Math.min(backoff * 2, this.#maxBackoffMs);
      this.#stats.reconnects += 1;
      try {
        this.#onReconnect?.({
          reason: end.reason,
          delayMs: Math.round(delay),
          unanswered: this.#leftUnanswered,
          attempts: this.#stats.attempts,
        });
      } catch {
        // A throwing callback must not fail the sender's events.
      }
      await sleep(delay);
    }
  }

  /**
   * Runs one SubmitEvents stream: resends the unanswered events first, then
   * forwards new ones (pushed by `send`), many to a message, and answers
   * events in order as results arrive.
   */
  async #stream(state: { answered: boolean; reached: boolean }): Promise<StreamEnd> {
    const channel = new Channel<Uint8Array, SubmitEventsRequest>(pack);
    // What the last stream left unanswered is sent again; events sent while
    // no stream was open (during the backoff) are sent for the first time.
    const resending = this.#leftUnanswered;
    for (const inFlight of this.#unanswered.slice(this.#head)) channel.push(inFlight.data);
    if (this.#closing) channel.close();
    this.#channel = channel;
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.#connectTimeoutMs);
    let index = 0n;
    try {
      const responses = this.#ingest.submitEvents(channel, {
        signal: abort.signal,
        onHeader: () => {
          state.reached = true;
          clearTimeout(timer);
          this.#stats.resent += resending;
        },
      });
      for await (const response of responses) {
        for (const result of results(response)) {
          if (result.index !== index) {
            return { kind: "retry", reason: `ingest answered out of order at ${index}` };
          }
          const inFlight = this.#first();
          if (inFlight === undefined) {
            return { kind: "retry", reason: `ingest answered event ${index}, which was not sent` };
          }
          if (result.case === "ack") {
            this.#shift();
            this.#stats.acked += 1;
            inFlight.resolve(result.ack);
          } else if (result.case === "error") {
            if (result.error.code === EventErrorCode.UNAVAILABLE) {
              // Not stored: resend it and everything after it.
              return { kind: "retry", reason: result.error.message };
            }
            this.#shift();
            this.#stats.rejected += 1;
            inFlight.reject(EventRejected.fromEventError(result.error, inFlight.event.idempotencyKey));
          } else {
            return { kind: "retry", reason: "a result without an outcome" };
          }
          index += 1n;
          state.answered = true;
        }
      }
      if (this.#closing && this.#pending() === 0) return { kind: "done" };
      return { kind: "retry", reason: "ingest ended the stream early" };
    } catch (error) {
      if (timedOut) {
        return { kind: "retry", reason: `ingest did not accept the stream within ${this.#connectTimeoutMs} ms` };
      }
      const connectError = ConnectError.from(error);
      if (FATAL.has(connectError.code)) {
        return { kind: "fatal", error: fromCallError(connectError, this.#url) };
      }
      return { kind: "retry", reason: describeConnectError(connectError) };
    } finally {
      clearTimeout(timer);
      this.#channel = undefined;
      this.#leftUnanswered = this.#pending();
      channel.abandon();
      abort.abort(); // ends the call if it is still open
    }
  }
}

/** The next message of the encoded events `entries` from `start`: as many as fit. */
function pack(entries: readonly Uint8Array[], start: number): { message: SubmitEventsRequest; taken: number } {
  const taken = fitting(entries, start);
  return { message: eventsMessage(entries.slice(start, start + taken)), taken };
}
