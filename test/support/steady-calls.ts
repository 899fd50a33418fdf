// A steady stream of calls kept running while a test disturbs Redis (kills a primary, fails over),
// recording every call, so the test can show afterwards that none failed, how long each took, and
// when the cache answered again.

/** One call of the stream. `startedAt`/`endedAt` are `performance.now()` values. */
export interface StreamedCall<T> {
  startedAt: number;
  endedAt: number;
  /** The call's value, or undefined when it rejected. */
  value?: T;
  /** What the call rejected with, if it did. */
  error?: unknown;
  /** What the test's `classify` said of the value (e.g. whether the cache served it). */
  cached: boolean;
}

export interface SteadyCallsOptions<T> {
  /** Makes call number `n` (0, 1, 2, ... across all workers). */
  call: (n: number) => Promise<T>;
  /**
   * Whether `value` came from the cache rather than the source. Called with what `before()` returned
   * when the call started, so a source that numbers its loads can tell an old load from a new one.
   */
  cached: (value: T, before: number) => boolean;
  /** Read at the start of every call and handed to `cached` (e.g. the source's load counter). */
  before: () => number;
  /** Loops calling one after another; default 4. */
  workers?: number;
  /** Pause between two calls of one worker, so the stream is steady rather than a busy loop; default 5 ms. */
  pauseMs?: number;
}

/** Calls `call` from `workers` loops until `stop()`; never rejects (a rejection is recorded). */
export class SteadyCalls<T> {
  readonly calls: StreamedCall<T>[] = [];
  private running = true;
  private next = 0;
  private readonly loops: Promise<void>[];

  constructor(private readonly options: SteadyCallsOptions<T>) {
    this.loops = Array.from({ length: options.workers ?? 4 }, () => this.loop());
  }

  /** Stops the loops and resolves once the calls in flight have ended. */
  async stop(): Promise<StreamedCall<T>[]> {
    this.running = false;
    await Promise.all(this.loops);
    return this.calls;
  }

  /** The calls that rejected. */
  failures(): StreamedCall<T>[] {
    return this.calls.filter((call) => 'error' in call);
  }

  /** The first call started at or after `since` that the cache served, if any yet. */
  firstCachedSince(since: number): StreamedCall<T> | undefined {
    return this.calls.find((call) => call.startedAt >= since && call.cached);
  }

  private async loop(): Promise<void> {
    const { call, cached, before, pauseMs = 5 } = this.options;
    while (this.running) {
      const n = this.next++;
      const mark = before();
      const startedAt = performance.now();
      try {
        const value = await call(n);
        this.calls.push({ startedAt, endedAt: performance.now(), value, cached: cached(value, mark) });
      } catch (error) {
        this.calls.push({ startedAt, endedAt: performance.now(), error, cached: false });
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }
}
