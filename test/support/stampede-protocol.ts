// What the stampede worker (stampede-worker.ts) and its parents say to each other: the spec
// test/integration/stampede-processes.spec.ts (over Node's IPC channel) and the benchmark
// bench/stampede.bench.ts (a PUBLISH starts a run, the report comes back over IPC). Shared by both
// sides; the worker's copy is compiled by tsc.

/**
 * The methods of the worker's `SlowSource`. The decorated ones have their own key prefix and lease
 * options: `compute` takes the module's lease options, `noLock` has none (in-process single-flight
 * only). `lruFetch` is no cache of this package: the same method behind an in-process lru-cache
 * `fetch`, the floor the benchmark measures waiting against.
 */
export type StampedeMethod = 'compute' | 'noLock' | 'impatient' | 'shortLease' | 'lruFetch';

/** `lockWait` of `SlowSource.impatient` (ms). */
export const IMPATIENT_LOCK_WAIT_MS = 300;
/** `lockTtl` of `SlowSource.shortLease` (ms; the decorator says '1s'). */
export const SHORT_LEASE_TTL_MS = 1_000;

/** The logical cache key of `method(key)`: the decorators' templates, for reading it back in the parent. */
export function cacheKeyOf(method: StampedeMethod, key: string): string {
  return `${method}:${key}`;
}

/** Where the worker counts executions of `method(key)`: a plain Redis counter outside the namespace. */
export function executionsKey(method: StampedeMethod, key: string): string {
  return `stampede-executions:${method}:${key}`;
}

/** What every execution returns, so callers can tell which execution they were given. */
export interface StampedeValue {
  key: string;
  pid: number;
  /** The shared counter's value after this execution's INCR: 1 for the first execution. */
  execution: number;
  /** Epoch ms when the method returned (the value lands in Redis right after). */
  returnedAt: number;
}

/** One run: every call the worker fires at once. */
export interface RunCommand {
  method: StampedeMethod;
  key: string;
  /** How long the method sleeps. */
  methodMs: number;
  /** Concurrent calls this worker fires. */
  calls: number;
}

/** Parent to worker over IPC. The same `RunCommand`, as JSON, is what a PUBLISH on the start channel carries. */
export type ParentMessage =
  | (RunCommand & {
      type: 'run';
      /** Epoch ms at which all calls start (the same for every worker). */
      startAt: number;
    })
  | { type: 'exit' };

/**
 * What one worker's calls of one run got. Times are epoch ms with sub-millisecond precision
 * (`performance.timeOrigin + performance.now()`), so the parent can compare processes.
 */
export interface RunReport {
  /** JSON of each distinct value returned, and how many calls returned it. */
  values: Record<string, number>;
  errors: string[];
  /** When the calls were fired: at `startAt`, or when the PUBLISH arrived. */
  releasedAt: number;
  /** How long each call that resolved took, ms. */
  latencies: number[];
  /** The first and the last call to resolve (or reject). */
  firstEnd: number;
  lastEnd: number;
  /** The method's executions in this process during the run: from before its INCR to its return. */
  executions: Array<{ startedAt: number; endedAt: number }>;
}

/** Worker to parent. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'executing'; pid: number; key: string; execution: number; at: number }
  | { type: 'done'; pid: number; key: string; report: RunReport }
  | { type: 'fatal'; pid: number; error: string };
