// What test/integration/stampede-processes.spec.ts and its child processes (stampede-worker.ts) say
// to each other over Node's IPC channel. Shared by both sides; the worker's copy is compiled by tsc.

/** The decorated methods of the worker's `SlowSource`, each with its own key prefix and lease options. */
export type StampedeMethod = 'compute' | 'impatient' | 'shortLease';

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

/** Parent to worker. */
export type ParentMessage =
  | {
      type: 'run';
      method: StampedeMethod;
      key: string;
      /** How long the method sleeps. */
      methodMs: number;
      /** Concurrent calls this worker fires. */
      calls: number;
      /** Epoch ms at which all calls start (the same for every worker). */
      startAt: number;
    }
  | { type: 'exit' };

/** What one worker's calls of one run got. */
export interface RunReport {
  /** JSON of each distinct value returned, and how many calls returned it. */
  values: Record<string, number>;
  errors: string[];
  /** Epoch ms: the first and the last call to resolve (or reject). */
  firstEnd: number;
  lastEnd: number;
  /** Executions of the method in this process during the run. */
  localExecutions: number;
}

/** Worker to parent. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'executing'; pid: number; key: string; execution: number; at: number }
  | { type: 'done'; pid: number; key: string; report: RunReport }
  | { type: 'fatal'; pid: number; error: string };
