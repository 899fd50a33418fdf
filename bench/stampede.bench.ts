/**
 * Stampede protection across processes. Four Node processes (test/support/stampede-worker.ts, the
 * worker of test/integration/stampede-processes.spec.ts too), each a Nest application context with
 * `RedisCacheModule.forRoot` on one throwaway redis-server (started here, stopped at the end), call a
 * `@Cacheable` method that takes 100 ms and counts its runs in Redis. Each round, one PUBLISH releases all four at once; each fires 250 concurrent calls on the
 * same cold key (a fresh key per round). Per round and in aggregate it prints how many times the
 * method ran across the processes (goal with the cross-process lock: exactly 1), how many callers
 * were served, caller latency p50/p99/max, and p99 minus the method's own duration (goal: < 5 ms).
 * The `lock: false` variant, interleaved round by round, is the contrast: in-process single-flight
 * only, so up to one run per process.
 *
 * Run: npm run bench:stampede
 * Knobs: BENCH_ROUNDS (default 20 per variant), BENCH_WORKERS (4), BENCH_CALLS (250 per worker),
 * BENCH_METHOD_MS (100), BENCH_VARIANTS (lock,no-lock), BENCH_DEADLINE_S (90).
 */
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { LocalRedisServer } from '../tools/local-redis-server.mjs';
import { runBench } from './support/run-bench.js';
import { median } from './support/async-harness.js';
import { packageVersion } from './support/package-version.js';
import {
  executionsKey,
  type ParentMessage,
  type RunCommand,
  type RunReport,
  type StampedeMethod,
  type WorkerMessage,
} from '../test/support/stampede-protocol.js';
import { spawnWorker, stopWorkers, type WorkerHandle } from '../test/support/worker-processes.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const CALLS = Number(process.env.BENCH_CALLS ?? 250);
const METHOD_MS = Number(process.env.BENCH_METHOD_MS ?? 100);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 90);
const VARIANTS = (process.env.BENCH_VARIANTS ?? 'lock,no-lock').split(',').map((v) => v.trim()) as StampedeVariant[];
const WARMUP_ROUNDS = 1;
const ROUND_TIMEOUT_MS = 20_000;
const P99_OVERHEAD_GOAL_MS = 5;
if (!VARIANTS.every((v) => v === 'lock' || v === 'no-lock')) throw new Error('BENCH_VARIANTS: lock,no-lock');
/** One PUBLISH on it releases every worker at once (no clocks to agree on). */
const START_CHANNEL = 'stampede-bench:start';
const CACHE_NAMESPACE = 'stampede-bench';

type StampedeVariant = 'lock' | 'no-lock';
/** The worker's method of each variant: the module's lease options, or none. */
const METHOD_OF: Record<StampedeVariant, StampedeMethod> = { lock: 'compute', 'no-lock': 'noLock' };
type DoneMessage = Extract<WorkerMessage, { type: 'done' }>;

interface RoundResult {
  variant: StampedeVariant;
  executions: number;
  /** Method runs per worker, e.g. [1, 0, 0, 0]. */
  perWorker: number[];
  served: number;
  failures: number;
  wrongValues: number;
  /** Distinct values the callers got, across the processes (1 = everyone shared one run). */
  values: number;
  latencies: number[];
  p50: number;
  p99: number;
  max: number;
  /** Mean duration of the round's method runs, ms. */
  bodyMs: number;
  /** Between the first and the last worker receiving the start signal, ms. */
  releaseSpreadMs: number;
  /** From the start signal to the method's start, in the processes that ran it (max over them). */
  toStartMs: number;
  /** From the end of a process's own method run to its last caller served (max over those processes). */
  ownTailMs: number;
  /** From the end of the first method run to the last caller served in a process that ran none. */
  otherTailMs: number;
}

const workers: Array<WorkerHandle<WorkerMessage, ParentMessage>> = [];

async function runRound(publisher: Redis, variant: StampedeVariant, key: string): Promise<RoundResult> {
  const done = Promise.all(
    workers.map((worker) =>
      worker.next((m): m is DoneMessage => m.type === 'done' && m.key === key, ROUND_TIMEOUT_MS, `round ${key}`),
    ),
  );
  const method = METHOD_OF[variant];
  const command: RunCommand = { method, key, methodMs: METHOD_MS, calls: CALLS };
  const receivers = await publisher.publish(START_CHANNEL, JSON.stringify(command));
  if (receivers !== WORKERS) throw new Error(`the start signal reached ${receivers} of ${WORKERS} workers`);
  const rounds: RunReport[] = (await done).map((message) => message.report);
  const executions = Number((await publisher.get(executionsKey(method, key))) ?? 0);
  const latencies = rounds.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const bodies = rounds.flatMap((r) => r.executions.map((e) => e.endedAt - e.startedAt));
  const releases = rounds.map((r) => r.releasedAt);
  const firstBodyEnd = Math.min(...rounds.flatMap((r) => r.executions.map((e) => e.endedAt)));
  return {
    variant,
    executions,
    perWorker: rounds.map((r) => r.executions.length),
    served: latencies.length,
    failures: rounds.reduce((sum, r) => sum + r.errors.length, 0),
    wrongValues: rounds.reduce((sum, r) => sum + wrongValues(r, key), 0),
    values: new Set(rounds.flatMap((r) => Object.keys(r.values))).size,
    latencies,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies[latencies.length - 1] ?? Number.NaN,
    bodyMs: bodies.length ? bodies.reduce((a, b) => a + b, 0) / bodies.length : Number.NaN,
    releaseSpreadMs: Math.max(...releases) - Math.min(...releases),
    toStartMs: Math.max(...rounds.flatMap((r) => r.executions.map((e) => e.startedAt - r.releasedAt))),
    ownTailMs: Math.max(
      ...rounds
        .filter((r) => r.executions.length)
        .map((r) => r.lastEnd - Math.max(...r.executions.map((e) => e.endedAt))),
    ),
    otherTailMs: Math.max(...rounds.filter((r) => !r.executions.length).map((r) => r.lastEnd - firstBodyEnd)),
  };
}

/** Calls of this report that resolved with a value for another key (never expected). */
function wrongValues(report: RunReport, key: string): number {
  return Object.entries(report.values)
    .filter(([json]) => (JSON.parse(json) as { key: string }).key !== key)
    .reduce((sum, [, calls]) => sum + calls, 0);
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const COLUMNS: Array<[string, number]> = [
  ['round', 16],
  ['runs', 5],
  ['per process', 12],
  ['served', 7],
  ['values', 7],
  ['p50 ms', 8],
  ['p99 ms', 8],
  ['max ms', 8],
  ['method ms', 10],
  ['p99-method', 11],
  ['release spread', 15],
  ['to start', 9],
  ['tail: own', 10],
  ['other', 6],
];

function row(cells: string[]): string {
  return cells.map((cell, i) => (i ? cell.padStart(COLUMNS[i][1]) : cell.padEnd(COLUMNS[i][1]))).join(' ');
}

function printRound(label: string, r: RoundResult): void {
  console.log(
    row([
      label,
      String(r.executions),
      r.perWorker.join('+'),
      `${r.served}${r.failures ? ` (${r.failures} failed)` : ''}`,
      String(r.values),
      r.p50.toFixed(1),
      r.p99.toFixed(1),
      r.max.toFixed(1),
      r.bodyMs.toFixed(1),
      (r.p99 - r.bodyMs).toFixed(1),
      `${r.releaseSpreadMs.toFixed(2)} ms`,
      r.toStartMs.toFixed(1),
      r.ownTailMs.toFixed(1),
      Number.isFinite(r.otherTailMs) ? r.otherTailMs.toFixed(1) : '-',
    ]),
  );
}

function summarize(variant: StampedeVariant, results: RoundResult[]): string[] {
  const runs = results.map((r) => r.executions);
  const pooled = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const overheads = results.map((r) => r.p99 - r.bodyMs);
  const expectedCallers = results.length * WORKERS * CALLS;
  const served = results.reduce((sum, r) => sum + r.served, 0);
  const failures = results.reduce((sum, r) => sum + r.failures, 0);
  const wrong = results.reduce((sum, r) => sum + r.wrongValues, 0);
  const exactlyOne = runs.filter((n) => n === 1).length;
  const otherTails = results.map((r) => r.otherTailMs).filter(Number.isFinite);
  const lines = [
    `${variant}: method runs per round ${runs.join(' ')} (total ${runs.reduce((a, b) => a + b, 0)} in ` +
      `${results.length} rounds; exactly 1 in ${exactlyOne}/${results.length})`,
    `  callers served ${served}/${expectedCallers}${failures ? `, ${failures} failed` : ''}` +
      `${wrong ? `, ${wrong} got another key's value` : ''}; distinct values per round ` +
      `${results.map((r) => r.values).join(' ')}`,
    `  caller latency over all rounds: p50 ${percentile(pooled, 0.5).toFixed(1)} ms, p99 ` +
      `${percentile(pooled, 0.99).toFixed(1)} ms, max ${pooled[pooled.length - 1].toFixed(1)} ms; ` +
      `method ${median(results.map((r) => r.bodyMs)).toFixed(1)} ms (median of rounds)`,
    `  p99 minus the method's duration: median of rounds ${median(overheads).toFixed(1)} ms, worst round ` +
      `${Math.max(...overheads).toFixed(1)} ms (goal < ${P99_OVERHEAD_GOAL_MS} ms)`,
    `  start signal to the method's start ${median(results.map((r) => r.toStartMs)).toFixed(1)} ms; ` +
      `method's end to the last caller served: in the process that ran it ` +
      `${median(results.map((r) => r.ownTailMs)).toFixed(1)} ms` +
      (otherTails.length ? `, in the processes that waited ${median(otherTails).toFixed(1)} ms` : '') +
      ' (medians of rounds)',
  ];
  if (variant === 'lock') {
    const ok = exactlyOne === results.length && served === expectedCallers && median(overheads) < P99_OVERHEAD_GOAL_MS;
    lines.push(`  goals (1 run per round, everyone served, p99-method < 5 ms): ${ok ? 'met' : 'NOT met'}`);
  }
  return lines;
}

async function main(server: LocalRedisServer): Promise<void> {
  const publisher = new Redis(server.url, { maxRetriesPerRequest: 1 });
  publisher.on('error', () => undefined);
  try {
    const redisVersion = /redis_version:(\S+)/.exec(await publisher.info('server'))?.[1];
    console.log(
      `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, ioredis ` +
        `${packageVersion('ioredis')}, redis-server ${redisVersion} on loopback; ${cpus().length} CPUs ` +
        `(${cpus()[0]?.model.trim()}), load average ${loadavg()[0].toFixed(2)}`,
    );
    console.log(
      `${WORKERS} processes x ${CALLS} concurrent calls on one cold key per round, method ${METHOD_MS} ms; ` +
        `${ROUNDS} measured rounds per variant after ${WARMUP_ROUNDS} warm-up, variants interleaved\n`,
    );

    // Compiled beside this file by bench/tsconfig.json (its `include` lists the worker).
    const script = fileURLToPath(new URL('../test/support/stampede-worker.js', import.meta.url));
    const env = {
      STAMPEDE_REDIS_URL: server.url,
      STAMPEDE_NAMESPACE: CACHE_NAMESPACE,
      STAMPEDE_START_CHANNEL: START_CHANNEL,
    };
    for (let i = 0; i < WORKERS; i++) workers.push(spawnWorker(script, env, { name: `stampede worker ${i}` }));
    await Promise.all(workers.map((worker) => worker.ready));

    console.log(row(COLUMNS.map(([name]) => name)));
    const results = new Map<StampedeVariant, RoundResult[]>(VARIANTS.map((v) => [v, []]));
    for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
      for (let step = 0; step < VARIANTS.length; step++) {
        const variant = VARIANTS[(Math.max(round, 0) + step) % VARIANTS.length];
        const key = `${variant}-${round < 0 ? `warmup${-round}` : round + 1}-${Date.now()}`;
        const result = await runRound(publisher, variant, key);
        printRound(`${variant} ${round < 0 ? 'warm-up' : `#${round + 1}`}`, result);
        if (round >= 0) results.get(variant)!.push(result);
      }
    }
    console.log();
    for (const variant of VARIANTS) {
      for (const line of summarize(variant, results.get(variant)!)) console.log(line);
    }
    if (VARIANTS.length === 2) {
      // Without the lock every process runs the method itself, so its callers' p99 - method is what
      // 4 busy processes on this machine cost anyway; the difference is what waiting on another
      // process's load adds.
      const overhead = (v: StampedeVariant) => median(results.get(v)!.map((r) => r.p99 - r.bodyMs));
      console.log(
        `lock vs no-lock, p99 minus the method's duration (medians of rounds): ` +
          `${overhead('lock').toFixed(1)} ms vs ${overhead('no-lock').toFixed(1)} ms, ` +
          `the lock adds ${(overhead('lock') - overhead('no-lock')).toFixed(1)} ms`,
      );
    }
  } finally {
    await stopWorkers(workers);
    await publisher.quit().catch(() => publisher.disconnect());
  }
}

await runBench('stampede bench', DEADLINE_S, main, () => {
  for (const worker of workers) worker.child.kill('SIGKILL');
});
