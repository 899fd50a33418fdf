/** What bench/stampede.bench.ts and its workers (support/stampede-worker.ts) exchange. */

export const START_CHANNEL = 'stampede-bench:start';
export const CACHE_NAMESPACE = 'stampede-bench';
/** Outside the cache namespace, so the cache never reads or clears it. */
export const executionsKey = (key: string): string => `stampede-executions:${key}`;

export type StampedeVariant = 'lock' | 'no-lock';

export interface StartSignal {
  variant: StampedeVariant;
  key: string;
}

export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | {
      type: 'round';
      worker: number;
      key: string;
      /** When the start signal arrived, epoch ms (`performance.timeOrigin + now()`), to compare workers. */
      releasedAt: number;
      /** Latency of every call that resolved, ms. */
      latencies: number[];
      failures: number;
      /** A call resolved with a value for another key (never expected). */
      wrongValues: number;
      /** Distinct loaded values the callers of this process received (by load token). */
      tokens: string[];
      /** Method runs in this process this round, and how long each took (ms). */
      bodyMs: number[];
      /** When each of those runs returned, epoch ms. */
      bodyEndedAt: number[];
      /** When the last call of this process resolved, epoch ms. */
      lastServedAt: number;
    };

export interface StampedeValue {
  key: string;
  /** Unique per method run: callers holding the same token were served by the same run. */
  token: string;
}
