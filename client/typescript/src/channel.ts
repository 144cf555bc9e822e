// A push-driven async iterable: the request side of one SubmitEvents call.
// Items pushed before the transport asks for the next message are buffered
// (the sender's window bounds how many), and each message it asks for is
// made of as many buffered items as `pack` takes: whatever is queued when the
// transport is ready goes in one message. When the transport waits for an
// item, the first one pushed is handed over at the end of the current turn
// of the event loop (setImmediate), with every other pushed meanwhile: a
// caller sending in a loop fills one message rather than a message with its
// first event and one with the rest. `close()` ends the iteration (a
// half-close) once the buffer is taken, `abandon()` ends it and drops
// whatever is buffered.

/** Makes the next message of `items` from `start`: the message and how many items it took (at least one). */
export type Pack<T, M> = (items: readonly T[], start: number) => { message: M; taken: number };

export class Channel<T, M> implements AsyncIterable<M> {
  readonly #pack: Pack<T, M>;
  #buffer: T[] = [];
  #head = 0;
  #closed = false;
  #waiting: ((result: IteratorResult<M>) => void) | undefined;
  #handing = false;

  constructor(pack: Pack<T, M>) {
    this.#pack = pack;
  }

  /** Queues `item`; ignored once closed. */
  push(item: T): void {
    if (this.#closed) return;
    this.#buffer.push(item);
    if (this.#waiting !== undefined && !this.#handing) {
      this.#handing = true;
      setImmediate(() => this.#handOver());
    }
  }

  /** Gives the waiting transport a message of what is buffered now. */
  #handOver(): void {
    this.#handing = false;
    const waiting = this.#waiting;
    if (waiting === undefined || this.#head >= this.#buffer.length) return;
    this.#waiting = undefined;
    waiting({ value: this.#take(), done: false });
  }

  /** Ends the iteration once the buffered items are taken. */
  close(): void {
    this.#closed = true;
    if (this.#head >= this.#buffer.length) this.#finish();
  }

  /** Ends the iteration now, dropping buffered items. */
  abandon(): void {
    this.#closed = true;
    this.#buffer = [];
    this.#head = 0;
    this.#finish();
  }

  get closed(): boolean {
    return this.#closed;
  }

  #finish(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  /** The next message, from the buffered items (there is at least one). */
  #take(): M {
    const { message, taken } = this.#pack(this.#buffer, this.#head);
    this.#head += Math.max(1, taken);
    if (this.#head >= this.#buffer.length) {
      this.#buffer = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#buffer.length) {
      this.#buffer = this.#buffer.slice(this.#head);
      this.#head = 0;
    }
    return message;
  }

  #next(): Promise<IteratorResult<M>> {
    if (this.#head < this.#buffer.length) return Promise.resolve({ value: this.#take(), done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<M> {
    return {
      next: () => this.#next(),
      return: () => {
        this.abandon();
        return Promise.resolve({ value: undefined, done: true });
      },
      // The transport throws into the request stream when the call fails;
      // the stream just ends (the sender resends what was not answered).
      throw: () => {
        this.abandon();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
