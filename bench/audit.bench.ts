/**
 * What the keyspace audit costs at scale. A throwaway redis-server (started here, stopped at the
 * end) is filled with 1,000,000 keys over 10 prefixes (pipelined SETs: TTLs spread over each
 * prefix's range, and keys without a TTL in two prefixes), then `auditKeyspace` runs on it: with the
 * default sample (MEMORY USAGE for the first 1,000 keys of a prefix, then a thinning sample) and,
 * for comparison, measuring every key. Each run must count every key, and every key without a TTL,
 * exactly; the bench prints the time, keys/s, how many MEMORY USAGE calls were made and how far the
 * sampled bytes are from the measured ones. A bare SCAN + pipelined PTTL walk is timed first, as the
 * floor the audit's own work adds to.
 *
 * Run: npm run bench:audit
 * Knobs: BENCH_KEYS (1,000,000), BENCH_EXACT (1: also run measuring every key), BENCH_DEADLINE_S (300).
 */
import { Redis } from 'ioredis';
import { auditKeyspace } from '../lib/audit/audit-keyspace.js';
import type { KeyspaceAuditReport } from '../lib/audit/audit-report.js';
import { formatBytes, formatCount } from '../lib/audit/human-report.js';
import { ScanProgress } from '../lib/audit/scan-progress.js';
import type { LocalRedisServer } from '../tools/local-redis-server.mjs';
import { packageVersion } from './support/package-version.js';
import { runBench } from './support/run-bench.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const EXACT = process.env.BENCH_EXACT !== '0';
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 300);
const FILL_BATCH = 10_000;

/** The prefixes, each with the TTL range of its keys (seconds; undefined: no TTL) and a typical value size. */
interface PrefixPlan {
  readonly prefix: string;
  readonly ttl: (i: number) => number | undefined;
  readonly valueBytes: number;
}

const PLANS: readonly PrefixPlan[] = [
  { prefix: 'cache:user', ttl: (i) => 86_400 + (i % 3_600), valueBytes: 180 },
  { prefix: 'cache:feed', ttl: (i) => 3_600 + (i % 600), valueBytes: 900 },
  { prefix: 'cache:trending', ttl: (i) => 300 + (i % 60), valueBytes: 400 },
  { prefix: 'cache:static', ttl: (i) => 604_800 + (i % 86_400), valueBytes: 60 },
  { prefix: 'cache:session', ttl: (i) => 1_800 + (i % 300), valueBytes: 120 },
  { prefix: 'cache:post', ttl: (i) => 3_600 + (i % 3_600), valueBytes: 2_000 },
  { prefix: 'cache:search', ttl: (i) => 600 + (i % 600), valueBytes: 300 },
  { prefix: 'cache:profile', ttl: () => 86_400, valueBytes: 250 },
  { prefix: 'legacy', ttl: () => undefined, valueBytes: 100 },
  { prefix: 'tmp:import', ttl: (i) => (i % 2 === 0 ? 7_200 : undefined), valueBytes: 40 },
];

/** Keys written and keys without a TTL, per prefix: what every audit must report exactly. */
type Expected = Map<string, { keys: number; withoutTtl: number }>;

async function fill(redis: Redis): Promise<Expected> {
  const expected: Expected = new Map(PLANS.map((plan) => [plan.prefix, { keys: 0, withoutTtl: 0 }]));
  // Sizes spread from 0.25x to 1.75x a prefix's typical value, so a sampled size has something to miss.
  const longest = 'v'.repeat(Math.max(...PLANS.map((plan) => plan.valueBytes)) * 2);
  const valueOf = (plan: PrefixPlan, i: number) =>
    longest.slice(0, Math.round(plan.valueBytes * (0.25 + (1.5 * ((i * 7_919) % 1_000)) / 1_000)));
  for (let start = 0; start < KEYS; start += FILL_BATCH) {
    const pipeline = redis.pipeline();
    for (let n = start; n < Math.min(KEYS, start + FILL_BATCH); n++) {
      const plan = PLANS[n % PLANS.length]!;
      const i = Math.floor(n / PLANS.length);
      const key = `${plan.prefix}:${i}`;
      const ttl = plan.ttl(i);
      const counts = expected.get(plan.prefix)!;
      counts.keys++;
      if (ttl === undefined) {
        counts.withoutTtl++;
        pipeline.set(key, valueOf(plan, i));
      } else pipeline.set(key, valueOf(plan, i), 'EX', ttl);
    }
    await pipeline.exec();
  }
  return expected;
}

/** Throws unless `report` counts every key and every key without a TTL, per prefix. */
function checkCounts(report: KeyspaceAuditReport, expected: Expected): void {
  const found = new Map(report.prefixes.map((entry) => [entry.prefix, entry]));
  for (const [prefix, { keys, withoutTtl }] of expected) {
    const entry = found.get(prefix);
    if (!entry || entry.keys !== keys || entry.withoutTtl !== withoutTtl) {
      throw new Error(
        `${prefix}: expected ${keys} keys (${withoutTtl} without TTL), the audit says ` +
          `${entry?.keys ?? 0} (${entry?.withoutTtl ?? 0})`,
      );
    }
  }
  if (report.prefixes.length !== expected.size) throw new Error(`unexpected prefixes: ${report.prefixes.length}`);
}

/**
 * The least a SCAN-based audit can cost: SCAN COUNT 1000 and one pipelined PTTL per key, nothing
 * counted or measured. What the audit adds over it is its own work (prefixes, sampling, MEMORY USAGE).
 */
async function timedFloor(redis: Redis): Promise<void> {
  const started = performance.now();
  let cursor = '0';
  let keys = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'COUNT', 1_000);
    const pipeline = redis.pipeline();
    for (const key of found) pipeline.pttl(key);
    await pipeline.exec();
    keys += found.length;
    cursor = next;
  } while (cursor !== '0');
  const seconds = (performance.now() - started) / 1_000;
  console.log(
    `${'floor: SCAN + PTTL only'.padEnd(28)} ${seconds.toFixed(2).padStart(6)} s  ` +
      `${formatCount(Math.round(keys / seconds)).padStart(9)} keys/s`,
  );
}

async function timedAudit(redis: Redis, label: string, sample: number): Promise<KeyspaceAuditReport> {
  const progress = process.stderr.isTTY ? new ScanProgress(process.stderr) : undefined;
  const started = performance.now();
  const report = await auditKeyspace(redis, { sample, onProgress: progress && ((update) => progress.update(update)) });
  const seconds = (performance.now() - started) / 1_000;
  progress?.finish();
  const measured = report.prefixes.reduce((sum, entry) => sum + entry.measuredKeys, 0);
  console.log(
    `${label.padEnd(28)} ${seconds.toFixed(2).padStart(6)} s  ${formatCount(Math.round(report.totals.keys / seconds)).padStart(9)} keys/s` +
      `  MEMORY USAGE calls: ${formatCount(measured).padStart(9)}  bytes: ${formatBytes(report.totals.bytes, report.totals.bytesEstimated)}`,
  );
  return report;
}

async function main(server: LocalRedisServer): Promise<void> {
  const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
  try {
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1];
    console.log(
      `keyspace audit of ${formatCount(KEYS)} keys over ${PLANS.length} prefixes ` +
        `(Redis ${version}, ioredis ${packageVersion('ioredis')}, Node ${process.version})`,
    );
    const fillStarted = performance.now();
    const expected = await fill(redis);
    const dbsize = await redis.dbsize();
    if (dbsize !== KEYS) throw new Error(`DBSIZE is ${dbsize}, expected ${KEYS}`);
    const usedMemory = /used_memory:(\d+)/.exec(await redis.info('memory'))?.[1];
    console.log(
      `filled in ${((performance.now() - fillStarted) / 1_000).toFixed(1)} s; used_memory ${formatBytes(Number(usedMemory))}`,
    );

    await timedFloor(redis);
    const sampled = await timedAudit(redis, 'sampled (sample 1,000)', 1_000);
    checkCounts(sampled, expected);
    if (EXACT) {
      const exact = await timedAudit(redis, 'every key measured', Number.MAX_SAFE_INTEGER);
      checkCounts(exact, expected);
      const error = (sampled.totals.bytes! - exact.totals.bytes!) / exact.totals.bytes!;
      console.log(`sampled bytes vs measured: ${(error * 100).toFixed(2)}% off`);
      for (const entry of sampled.prefixes) {
        const measured = exact.prefixes.find((other) => other.prefix === entry.prefix)!;
        const off = ((entry.bytes! - measured.bytes!) / measured.bytes!) * 100;
        console.log(
          `  ${entry.prefix.padEnd(16)} ${formatCount(entry.keys).padStart(8)} keys  ` +
            `${formatBytes(entry.bytes, true).padStart(10)} vs ${formatBytes(measured.bytes).padStart(9)}  ${off.toFixed(2).padStart(6)}%`,
        );
      }
    }
    console.log(
      `counts exact: ${formatCount(sampled.totals.keys)} keys, ${formatCount(sampled.totals.withoutTtl)} without TTL`,
    );
    console.log(`red flags: ${sampled.redFlags.map((flag) => flag.code).join(', ') || 'none'}`);
  } finally {
    redis.disconnect();
  }
}

void runBench('audit', DEADLINE_S, main);
