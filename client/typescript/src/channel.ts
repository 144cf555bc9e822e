// A push-driven async iterable: the request side of one SubmitEvents call.
// Items pushed before the transport asks are buffered (the sender's window
// bounds how many); `close()` ends the iteration (a half-close), `abandon()`
// ends it and drops whatever is buffered.

export class Channel<T> implements AsyncIterable<T> {
  #buffer: T[] = [];
  #head = 0;
  #closed = false;
  #waiting: ((result: IteratorResult<T>) => void) | undefined;

  /** Queues `item`; ignored once closed. */
  push(item: T): void {
    if (this.#closed) return;
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      waiting({ value: item, done: false });
      return;
    }
    this.#buffer.push(item);
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

  #next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#buffer.length) {
      const value = this.#buffer[this.#head] as T;
      this.#head += 1;
      if (this.#head > 1024 && this.#head * 2 > this.#buffer.length) {
        this.#buffer = this.#buffer.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
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
