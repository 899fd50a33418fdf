/**
 * Stampede protection, and what waiting costs against a floor. Four Node processes
 * (test/support/stampede-worker.ts, the worker of test/integration/stampede-processes.spec.ts too),
 * each a Nest application context with `RedisCacheModule.forRoot` on one throwaway redis-server
 * (started here, stopped at the end), call a method that takes 50 ms and counts its runs in Redis.
 * Each round, 1,000 concurrent calls hit one cold key (a fresh key per round), in one of two
 * topologies: one process firing all 1,000 (the processes take turns), or all four firing 250 each,
 * released at once by one PUBLISH. Variants, interleaved round by round in the same processes:
 *
 * - `lock`: the module's `@Cacheable` with its default lease (goal: exactly one run per round across
 *   the processes);
 * - `floor`: the same method behind an in-process lru-cache `fetch`, which coalesces the calls of its
 *   own process and knows nothing of the others (one run per process): what waiting costs at best;
 * - `no-lock` (four processes only; in one it is `lock`): `lock: false`, in-process single-flight only.
 *
 * Per round and in aggregate it prints the method's runs, the callers served, caller latency
 * p50/p99/max and p99 minus the method's own duration; then, per topology, the module's p99 − method
 * against the floor's and the gap between them (median of the rounds' differences; goal ≤ 3 ms).
 *
 * Run: npm run bench:stampede
 * Before the rounds, each variant runs BENCH_JIT_WARMUP times (default 1,500) on a fresh key with a
 * 0 ms method and two calls per process, so that what runs once per round (the holder's write and
 * release, a waiter's wake-up, lru-cache's fetch) is optimised code, as in a server that has served
 * misses for a while: 20 rounds alone leave it in V8's interpreter (bench/README.md, stampede).
 * BENCH_JIT_WARMUP=0 measures it cold.
 *
 * Knobs: BENCH_ROUNDS (default 20 per variant and topology), BENCH_WORKERS (4), BENCH_CALLERS (1,000
 * per round, split among the processes), BENCH_METHOD_MS (50), BENCH_VARIANTS (lock,floor,no-lock),
 * BENCH_JIT_WARMUP (1,500), BENCH_DEADLINE_S (150).
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
const CALLERS = Number(process.env.BENCH_CALLERS ?? 1_000);
const METHOD_MS = Number(process.env.BENCH_METHOD_MS ?? 50);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 150);
const VARIANTS = (process.env.BENCH_VARIANTS ?? 'lock,floor,no-lock').split(',').map((v) => v.trim()) as Variant[];
const WARMUP_ROUNDS = 1;
/** Short runs of each variant before the rounds (see the file comment). */
const JIT_WARMUP_RUNS = Number(process.env.BENCH_JIT_WARMUP ?? 1_500);
const ROUND_TIMEOUT_MS = 20_000;
/** Issue 11, item 7: the module's p99 − method within this much of the floor's, in the same run. */
const GAP_GOAL_MS = 3;
if (!VARIANTS.every((v) => v === 'lock' || v === 'floor' || v === 'no-lock')) {
  throw new Error('BENCH_VARIANTS: lock,floor,no-lock');
}
if (CALLERS % WORKERS !== 0) throw new Error('BENCH_CALLERS must split evenly among BENCH_WORKERS');
/** One PUBLISH on it releases every worker at once (no clocks to agree on). */
const START_CHANNEL = 'stampede-bench:start';
const CACHE_NAMESPACE = 'stampede-bench';

type Variant = 'lock' | 'floor' | 'no-lock';
/** The worker's method of each variant: the module's lease options, none, or lru-cache. */
const METHOD_OF: Record<Variant, StampedeMethod> = { lock: 'compute', floor: 'lruFetch', 'no-lock': 'noLock' };
/** How many processes fire the round's calls. */
const TOPOLOGIES = [1, WORKERS];
type DoneMessage = Extract<WorkerMessage, { type: 'done' }>;

/** One kind of round: who calls, and what. */
interface Slot {
  processes: number;
  variant: Variant;
}

interface RoundResult {
  executions: number;
  /** Method runs per calling process, e.g. [1, 0, 0, 0]. */
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

const slotName = ({ processes, variant }: Slot) => `${variant} ${processes}p`;

/**
 * `runs` short runs of `variant` in every process at once, each on a fresh key: a 0 ms method, two
 * calls per process (a caller that loads or waits, and one that joins it). Only what JIT warm-up
 * needs: every run must end without errors, nothing is measured.
 */
async function warmUp(publisher: Redis, variant: Variant, runs: number): Promise<void> {
  const method = METHOD_OF[variant];
  for (let run = 0; run < runs; run++) {
    const key = `jit-${variant}-${run}-${Date.now()}`;
    const done = Promise.all(
      workers.map((worker) =>
        worker.next((m): m is DoneMessage => m.type === 'done' && m.key === key, ROUND_TIMEOUT_MS, `warm-up ${key}`),
      ),
    );
    const command: RunCommand = { method, key, methodMs: 0, calls: 2 };
    await publisher.publish(START_CHANNEL, JSON.stringify(command));
    const errors = (await done).flatMap((message) => message.report.errors);
    if (errors.length > 0) throw new Error(`warm-up run ${key} failed: ${errors[0]}`);
  }
}

async function runRound(
  publisher: Redis,
  { processes, variant }: Slot,
  key: string,
  turn: number,
): Promise<RoundResult> {
  // One process: the workers take turns, so that every one of them is measured alike.
  const callers = processes === WORKERS ? workers : [workers[turn % WORKERS]];
  const done = Promise.all(
    callers.map((worker) =>
      worker.next((m): m is DoneMessage => m.type === 'done' && m.key === key, ROUND_TIMEOUT_MS, `round ${key}`),
    ),
  );
  const method = METHOD_OF[variant];
  const command: RunCommand = { method, key, methodMs: METHOD_MS, calls: CALLERS / callers.length };
  if (callers.length === 1) {
    callers[0].send({ type: 'run', ...command, startAt: 0 });
  } else {
    const receivers = await publisher.publish(START_CHANNEL, JSON.stringify(command));
    if (receivers !== WORKERS) throw new Error(`the start signal reached ${receivers} of ${WORKERS} workers`);
  }
  const rounds: RunReport[] = (await done).map((message) => message.report);
  const executions = Number((await publisher.get(executionsKey(method, key))) ?? 0);
  const latencies = rounds.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const bodies = rounds.flatMap((r) => r.executions.map((e) => e.endedAt - e.startedAt));
  const releases = rounds.map((r) => r.releasedAt);
  const firstBodyEnd = Math.min(...rounds.flatMap((r) => r.executions.map((e) => e.endedAt)));
  return {
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

const overheadOf = (r: RoundResult) => r.p99 - r.bodyMs;

const COLUMNS: Array<[string, number]> = [
  ['round', 18],
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

function row(cells: string[], columns = COLUMNS): string {
  return cells.map((cell, i) => (i ? cell.padStart(columns[i][1]) : cell.padEnd(columns[i][1]))).join(' ');
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
      overheadOf(r).toFixed(1),
      `${r.releaseSpreadMs.toFixed(2)} ms`,
      r.toStartMs.toFixed(1),
      r.ownTailMs.toFixed(1),
      Number.isFinite(r.otherTailMs) ? r.otherTailMs.toFixed(1) : '-',
    ]),
  );
}

/** Method runs expected per round: one across the processes with the lease, else one per process. */
function expectedRuns({ processes, variant }: Slot): number {
  return variant === 'lock' ? 1 : processes;
}

function summarize(slot: Slot, results: RoundResult[]): string[] {
  const runs = results.map((r) => r.executions);
  const pooled = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const overheads = results.map(overheadOf);
  const expectedCallers = results.length * CALLERS;
  const served = results.reduce((sum, r) => sum + r.served, 0);
  const failures = results.reduce((sum, r) => sum + r.failures, 0);
  const wrong = results.reduce((sum, r) => sum + r.wrongValues, 0);
  const asExpected = runs.filter((n) => n === expectedRuns(slot)).length;
  const otherTails = results.map((r) => r.otherTailMs).filter(Number.isFinite);
  return [
    `${slotName(slot)}: method runs per round ${runs.join(' ')} (total ${runs.reduce((a, b) => a + b, 0)} in ` +
      `${results.length} rounds; exactly ${expectedRuns(slot)} in ${asExpected}/${results.length})`,
    `  callers served ${served}/${expectedCallers}${failures ? `, ${failures} failed` : ''}` +
      `${wrong ? `, ${wrong} got another key's value` : ''}; distinct values per round ` +
      `${results.map((r) => r.values).join(' ')}`,
    `  caller latency over all rounds: p50 ${percentile(pooled, 0.5).toFixed(1)} ms, p99 ` +
      `${percentile(pooled, 0.99).toFixed(1)} ms, max ${pooled[pooled.length - 1].toFixed(1)} ms; ` +
      `method ${median(results.map((r) => r.bodyMs)).toFixed(1)} ms (median of rounds)`,
    `  p99 minus the method's duration: median of rounds ${median(overheads).toFixed(1)} ms, worst round ` +
      `${Math.max(...overheads).toFixed(1)} ms`,
    `  start signal to the method's start ${median(results.map((r) => r.toStartMs)).toFixed(1)} ms; ` +
      `method's end to the last caller served: in a process that ran it ` +
      `${median(results.map((r) => r.ownTailMs)).toFixed(1)} ms` +
      (otherTails.length ? `, in the processes that waited ${median(otherTails).toFixed(1)} ms` : '') +
      ' (medians of rounds)',
  ];
}

const GAP_COLUMNS: Array<[string, number]> = [
  ['topology', 20],
  ['module p99-method', 18],
  ['floor p99-method', 17],
  ['gap', 7],
  ['no-lock p99-method', 19],
  ['runs per round (module)', 24],
];

/**
 * Per topology: the module's p99 − method against the floor's, and the gap, the median of the
 * rounds' differences (a round of each runs back to back, so a slow moment mostly hits both).
 */
function printGaps(results: Map<string, RoundResult[]>): boolean {
  console.log(`\nwaiting against the floor (p99 minus the method, medians of rounds; goal: gap <= ${GAP_GOAL_MS} ms)`);
  console.log(
    row(
      GAP_COLUMNS.map(([name]) => name),
      GAP_COLUMNS,
    ),
  );
  let met = true;
  for (const processes of TOPOLOGIES) {
    const of = (variant: Variant) => results.get(slotName({ processes, variant }));
    const module = of('lock');
    const floor = of('floor');
    const noLock = of('no-lock');
    const gaps = module && floor ? module.map((r, i) => overheadOf(r) - overheadOf(floor[i])) : [];
    const gap = gaps.length ? median(gaps) : Number.NaN;
    const exactlyOne = module?.filter((r) => r.executions === 1).length ?? 0;
    if (!(gap <= GAP_GOAL_MS) || exactlyOne !== module?.length) met = false;
    const ms = (rounds: RoundResult[] | undefined) => (rounds ? median(rounds.map(overheadOf)).toFixed(1) : '-');
    console.log(
      row(
        [
          processes === 1 ? `1 process x ${CALLERS}` : `${processes} processes x ${CALLERS / processes}`,
          ms(module),
          ms(floor),
          Number.isFinite(gap) ? gap.toFixed(1) : '-',
          ms(noLock),
          module ? `exactly 1 in ${exactlyOne}/${module.length}` : '-',
        ],
        GAP_COLUMNS,
      ),
    );
  }
  return met;
}

async function main(server: LocalRedisServer): Promise<void> {
  const publisher = new Redis(server.url, { maxRetriesPerRequest: 1 });
  publisher.on('error', () => undefined);
  try {
    const redisVersion = /redis_version:(\S+)/.exec(await publisher.info('server'))?.[1];
    console.log(
      `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, ioredis ` +
        `${packageVersion('ioredis')}, lru-cache ${packageVersion('lru-cache')}, redis-server ${redisVersion} on ` +
        `loopback; ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), load average ${loadavg()[0].toFixed(2)}`,
    );
    console.log(
      `${CALLERS} concurrent calls on one cold key per round (1 process x ${CALLERS}, ${WORKERS} processes x ` +
        `${CALLERS / WORKERS}), method ${METHOD_MS} ms; ${ROUNDS} measured rounds per variant and topology ` +
        `after ${JIT_WARMUP_RUNS} short runs of each variant (JIT warm-up) and ${WARMUP_ROUNDS} warm-up round, ` +
        `all interleaved\n`,
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

    // In one process `lock: false` is `lock` (nobody else holds the lease): measured across processes only.
    const slots: Slot[] = TOPOLOGIES.flatMap((processes) =>
      VARIANTS.filter((variant) => processes > 1 || variant !== 'no-lock').map((variant) => ({ processes, variant })),
    );
    for (const variant of VARIANTS) await warmUp(publisher, variant, JIT_WARMUP_RUNS);
    console.log(row(COLUMNS.map(([name]) => name)));
    const results = new Map<string, RoundResult[]>(slots.map((slot) => [slotName(slot), []]));
    for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
      for (let step = 0; step < slots.length; step++) {
        const slot = slots[(Math.max(round, 0) + step) % slots.length];
        const label = `${slot.variant}-${slot.processes}p-${round < 0 ? `warmup${-round}` : round + 1}`;
        const result = await runRound(publisher, slot, `${label}-${Date.now()}`, round + WARMUP_ROUNDS);
        printRound(`${slotName(slot)} ${round < 0 ? 'warm-up' : `#${round + 1}`}`, result);
        if (round >= 0) results.get(slotName(slot))!.push(result);
      }
    }
    console.log();
    for (const slot of slots) {
      for (const line of summarize(slot, results.get(slotName(slot))!)) console.log(line);
    }
    const served = slots.every((slot) =>
      results.get(slotName(slot))!.every((r) => r.served === CALLERS && r.wrongValues === 0),
    );
    const met = printGaps(results) && served;
    console.log(
      `goals (module: 1 run per round across processes, everyone served, gap <= ${GAP_GOAL_MS} ms): ${met ? 'met' : 'NOT met'}`,
    );
  } finally {
    await stopWorkers(workers);
    await publisher.quit().catch(() => publisher.disconnect());
  }
}

await runBench('stampede bench', DEADLINE_S, main, () => {
  for (const worker of workers) worker.child.kill('SIGKILL');
});
