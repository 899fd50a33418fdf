/**
 * What the Prometheus collector adds to each cached call: the recorder the collector runs for one
 * message of the `call` channel (a Redis hit: `calls_total` inc + `call_duration_seconds` observe;
 * an L1 hit: the inc alone), against the floor, the least prom-client can do for the same series:
 * `inc()` and `observe()` on children taken once with `labels()`. In process, no Redis: this is CPU
 * on every call of an application that exports metrics. Prints ns per recorded call, median of
 * interleaved rounds, and the ratio to the floor measured in the same run.
 *
 * Run: npm run bench:prometheus
 * Knobs: BENCH_ROUNDS (default 9), BENCH_CALLS (per round, default 200,000).
 */
import { Registry } from 'prom-client';
import type { CacheCallEvent } from '../lib/events/cache-events.js';
import { CACHE_CHANNELS } from '../lib/events/cache-events.js';
import { cacheEventRecorders } from '../lib/prometheus/cache-event-recorders.js';
import { registerCacheMetrics } from '../lib/prometheus/cache-metric-set.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const CALLS = Number(process.env.BENCH_CALLS ?? 200_000);
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** The methods the recorded calls come from, in turn (an application has a handful). */
const NAMES = ['UsersService.findById', 'PostsService.feed', 'PostsController.findOne', 'CommentsService.thread'];

function callEvent(name: string, tier: 'redis' | 'l1'): CacheCallEvent {
  return {
    cache: 'default',
    namespace: 'app',
    name,
    operation: 'read',
    outcome: 'hit',
    tier,
    durationMs: tier === 'l1' ? 0 : 0.31,
    startTime: Date.now(),
    fallback: false,
    key: `user:${name.length}`,
  };
}

function nsPerCall(run: (i: number) => void): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) run(i);
  return Number(process.hrtime.bigint() - started) / CALLS;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function main(): void {
  const registry = new Registry();
  const { metrics } = registerCacheMetrics(registry, 'nestjs_redis_cache_', BUCKETS);
  const record = cacheEventRecorders(metrics, 100).get(CACHE_CHANNELS.call)!;
  const redisHits = NAMES.map((name) => callEvent(name, 'redis'));
  const l1Hits = NAMES.map((name) => callEvent(name, 'l1'));

  // The floor: children taken once (a second registry, so the series start equal).
  const floorRegistry = new Registry();
  const floor = registerCacheMetrics(floorRegistry, 'nestjs_redis_cache_', BUCKETS).metrics;
  const children = NAMES.map((name) => ({
    calls: floor.calls.labels({ cache: 'default', name, outcome: 'hit', tier: 'redis' }),
    l1Calls: floor.calls.labels({ cache: 'default', name, outcome: 'hit', tier: 'l1' }),
    duration: floor.callDuration.labels({ cache: 'default', name, tier: 'redis' }),
  }));

  const variants: Array<{ label: string; run: (i: number) => void; floorOf?: string }> = [
    {
      label: 'floor: child inc + observe',
      run: (i) => {
        const child = children[i & 3];
        child.calls.inc();
        child.duration.observe(0.00031);
      },
    },
    { label: 'collector: Redis hit', run: (i) => record(redisHits[i & 3]), floorOf: 'floor: child inc + observe' },
    { label: 'floor: child inc', run: (i) => children[i & 3].l1Calls.inc() },
    { label: 'collector: L1 hit', run: (i) => record(l1Hits[i & 3]), floorOf: 'floor: child inc' },
  ];
  for (const variant of variants) nsPerCall(variant.run); // warm-up
  const samples = new Map(variants.map((variant) => [variant.label, [] as number[]]));
  const ratios = new Map(variants.map((variant) => [variant.label, [] as number[]]));
  for (let round = 0; round < ROUNDS; round++) {
    const inRound = new Map<string, number>();
    for (const variant of variants) {
      const ns = nsPerCall(variant.run);
      inRound.set(variant.label, ns);
      samples.get(variant.label)!.push(ns);
      if (variant.floorOf) ratios.get(variant.label)!.push(ns / inRound.get(variant.floorOf)!);
    }
  }

  console.log(`node ${process.version}; ${ROUNDS} interleaved rounds of ${CALLS.toLocaleString('en')} calls\n`);
  console.log(`${'variant'.padEnd(30)} ${'ns/call'.padStart(9)} ${'x floor'.padStart(9)}`);
  for (const variant of variants) {
    const ratio = variant.floorOf ? `${median(ratios.get(variant.label)!).toFixed(2)}x` : '-';
    console.log(
      `${variant.label.padEnd(30)} ${median(samples.get(variant.label)!).toFixed(0).padStart(9)} ${ratio.padStart(9)}`,
    );
  }
  const counted = (
    registry.getSingleMetric('nestjs_redis_cache_calls_total') as unknown as {
      get(): Promise<{ values: Array<{ value: number }> }>;
    }
  ).get();
  void counted.then(({ values }) => {
    const total = values.reduce((sum, { value }) => sum + value, 0);
    const expected = (ROUNDS + 1) * CALLS * 2;
    // What was recorded must be every call, or the figures above measured nothing.
    if (total !== expected) throw new Error(`calls_total counted ${total} calls, expected ${expected}`);
    console.log(`\ncalls_total counted all ${total.toLocaleString('en')} recorded calls`);
  });
}

main();
