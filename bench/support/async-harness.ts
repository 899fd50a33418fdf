/**
 * Interleaved measurement of asynchronous operations at a fixed concurrency.
 *
 * The benchmarks run on a shared, noisy VM, so contenders never get a block of time each: every
 * round runs each contender once for `roundMs`, in an order rotated per round (ABC, BCA, CAB...),
 * and a ratio between two contenders is the median of their per-round ratios. A slow moment then
 * hits both sides of a ratio alike. Compare ratios within one run, never across runs. A minor GC
 * (a scavenge) runs, unmeasured, before each window, so a contender's young garbage is not
 * collected on the next one's time; the GC share reported is that of the pauses that began in a
 * contender's windows.
 *
 * Why minor and not full (BENCH_GC=full brings the full one back, BENCH_GC=none drops it): after a
 * forced full GC V8 hands heap pages back to the OS and touches fresh ones as the window allocates.
 * On this VM a fresh page costs about 12 µs. With 15 KB values at concurrency 1, windows after a full
 * GC took 125–2,058 minor page faults (none without it), ran up to 25% slower, and p99 went from
 * about 200 µs to 1 ms, on whichever contender the faults fell. That was the harness's noise, not
 * either contender's cost. A server under steady load keeps its heap. bench/README.md, "Results —
 * 2026-12-04: issue 11, seventh session".
 */
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// A GC before each contender's window, so no contender pays for garbage another one left (the
// benchmarks run with plain `node`, hence the flag set at run time).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
const GC_BEFORE_WINDOW = process.env.BENCH_GC ?? 'minor';
if (!['minor', 'full', 'none'].includes(GC_BEFORE_WINDOW)) throw new Error('BENCH_GC: minor, full or none');

/** The GC run before each window (see the file comment). */
function collectGarbage(): void {
  if (GC_BEFORE_WINDOW === 'minor') gc({ type: 'minor' });
  else if (GC_BEFORE_WINDOW === 'full') gc();
}

/** One way of doing the operation. `op(worker)` is awaited in a loop by each of the workers. */
export interface Contender {
  label: string;
  op: (worker: number) => Promise<unknown>;
}

export interface InterleaveOptions {
  /** How many loops run at once, each awaiting one `op` at a time. */
  concurrency: number;
  /** Measured rounds; each runs every contender once. */
  rounds: number;
  /** How long one contender runs in one round. */
  roundMs: number;
  /** Unmeasured rounds first (JIT, connection and allocator warm-up). */
  warmupRounds: number;
}

export interface ContenderResult {
  label: string;
  /** ops/s of each measured round, in round order. */
  roundOps: number[];
  /** Median over the rounds. */
  opsPerSec: number;
  /** Percentiles of every measured call's latency, pooled over the rounds. */
  p50Ms: number;
  p99Ms: number;
  calls: number;
  /** Share of the contender's measured time spent in garbage collection (all kinds). */
  gcShare: number;
}

let sink = 0;

/** Keeps results observable, so no engine can drop the work. */
function touch(result: unknown): void {
  sink ^= result === undefined || result === null ? 0 : 1;
}

/** `concurrency` loops of `op` for `ms`; returns ops/s and appends each call's latency. */
async function runFor(op: Contender['op'], concurrency: number, ms: number, latencies: number[]): Promise<number> {
  const start = performance.now();
  const deadline = start + ms;
  let ops = 0;
  const loop = async (worker: number): Promise<void> => {
    while (performance.now() < deadline) {
      const callStart = performance.now();
      touch(await op(worker));
      latencies.push(performance.now() - callStart);
      ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, worker) => loop(worker)));
  return (ops * 1_000) / (performance.now() - start);
}

/** Runs the contenders interleaved (see the file comment); results in the contenders' order. */
export async function interleave(
  contenders: readonly Contender[],
  options: InterleaveOptions,
): Promise<ContenderResult[]> {
  const latencies = contenders.map(() => [] as number[]);
  const roundOps = contenders.map(() => [] as number[]);
  const windows = contenders.map(() => [] as Array<[start: number, end: number]>);
  // GC pauses, attributed afterwards to the contender whose window they started in.
  const pauses: PerformanceEntry[] = [];
  const gcObserver = new PerformanceObserver((list) => pauses.push(...list.getEntries()));
  gcObserver.observe({ entryTypes: ['gc'] });
  for (let round = -options.warmupRounds; round < options.rounds; round++) {
    for (let step = 0; step < contenders.length; step++) {
      const index = (Math.max(round, 0) + step) % contenders.length;
      const scratch: number[] = [];
      collectGarbage();
      const start = performance.now();
      const ops = await runFor(
        contenders[index].op,
        options.concurrency,
        options.roundMs,
        round < 0 ? scratch : latencies[index],
      );
      if (round >= 0) {
        roundOps[index].push(ops);
        windows[index].push([start, performance.now()]);
      }
      // Let sockets and timers left over by one contender settle before the next one starts.
      await yieldToLoop();
    }
  }
  if (sink === 0.5) console.log(sink); // never true; keeps `sink` alive
  await yieldToLoop(); // GC entries are delivered asynchronously
  gcObserver.disconnect();
  return contenders.map(({ label }, i) => {
    const sorted = Float64Array.from(latencies[i]).sort();
    let measured = 0;
    let gc = 0;
    for (const [start, end] of windows[i]) {
      measured += end - start;
      for (const pause of pauses) {
        if (pause.startTime >= start && pause.startTime < end) gc += pause.duration;
      }
    }
    return {
      label,
      roundOps: roundOps[i],
      opsPerSec: median(roundOps[i]),
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      calls: sorted.length,
      gcShare: measured > 0 ? gc / measured : 0,
    };
  });
}

/** Median of the per-round ratios `a[i] / b[i]`. */
export function medianRatio(a: ContenderResult, b: ContenderResult): number {
  return median(a.roundOps.map((ops, round) => ops / b.roundOps[round]));
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
