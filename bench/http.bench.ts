/**
 * The cache-hit path through the sample app over HTTP, against the same request when the cache
 * cannot serve it and against a source that costs nothing, on Express and on Fastify. Per adapter,
 * four sample apps, each in its own process (support/http-app.ts), all on one throwaway
 * redis-server (started here, stopped at the end), each with an in-memory SQLite database seeded
 * with the same 50 users:
 *   - cached: the sample app as users run it, warmed so every `GET /users/:id` is a cache hit,
 *   - ceiling: the same app with `UsersService.findById` undecorated and answering from a Map of
 *     the seeded users: no cache, no SQLite, no delay. Cached / ceiling is the share of the
 *     framework's own throughput the cache leaves (issue 11's goal: at least 0.95x),
 *   - uncached, 0 ms: `findById` undecorated, `QUERY_DELAY_MS=0`: every request is the real SQLite
 *     read and nothing else (in-process SQLite by primary key is about as cheap as a real source gets),
 *   - uncached, 50 ms: the same with the sample app's default delay, standing in for a networked
 *     database.
 * autocannon (in this process) sends `GET /users/:id` over keep-alive connections, ids 1..50 in
 * turn, so concurrent requests are for different users and single-flight never merges them.
 * The adapters run one after the other, each with its own four processes (the other adapter's are
 * stopped by then); within an adapter, rounds are interleaved (order rotated per round). Prints
 * median requests/s, p50/p99 latency over every measured request, CPU time per request of the app's
 * process and of redis-server (read around each round, when only that app is under load: on a busy
 * machine a steadier measure of the cache's cost than requests/s), and cached/other ratios (median
 * of per-round ratios). After every round it checks that every response was a 200 and, for the
 * cached app, that `findById` did not miss once.
 *
 * Run: npm run bench:http
 * Knobs: BENCH_ADAPTERS (express,fastify), BENCH_ROUND_MS (default 2000), BENCH_ROUNDS (8 per
 * adapter), BENCH_CONNECTIONS (32), BENCH_DEADLINE_S (240), BENCH_CPU_PROF (a directory: the apps
 * run with `--cpu-prof` and write `<adapter>-<app>.cpuprofile` there when stopped).
 */
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { LocalRedisServer } from '../tools/local-redis-server.mjs';
import { runBench } from './support/run-bench.js';
import { median } from './support/async-harness.js';
import type { HttpAdapterName, HttpAppMessage, HttpAppMode } from './support/http-app.js';
import { packageVersion } from './support/package-version.js';

const ADAPTERS = (process.env.BENCH_ADAPTERS ?? 'express,fastify').split(',').map((name) => name.trim());
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 2_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 240);
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
const WARMUP_ROUNDS = 1;
const READY_TIMEOUT_MS = 30_000;
/** The seed's users: ids 1..50. */
const USER_IDS = 50;
/** The goal of issue 11, item 6: cached at least this share of the ceiling's requests/s. */
const CEILING_GOAL = 0.95;

const PLATFORMS: Record<HttpAdapterName, { title: string; packages: string[] }> = {
  express: { title: 'Express', packages: ['@nestjs/platform-express', 'express'] },
  fastify: { title: 'Fastify', packages: ['@nestjs/platform-fastify', 'fastify'] },
};

interface AppSpec {
  label: string;
  /** File-name-safe name, for the CPU profile. */
  slug: string;
  mode: HttpAppMode;
  queryDelayMs: number;
}

/** The cached app first: every ratio is cached / another app. */
const specs: AppSpec[] = [
  { label: 'cached (hits)', slug: 'cached', mode: 'cached', queryDelayMs: 50 },
  { label: 'ceiling (source in memory)', slug: 'ceiling', mode: 'ceiling', queryDelayMs: 0 },
  { label: 'uncached, query delay 0 ms', slug: 'uncached-0ms', mode: 'uncached', queryDelayMs: 0 },
  { label: 'uncached, query delay 50 ms', slug: 'uncached-50ms', mode: 'uncached', queryDelayMs: 50 },
];

interface RunningApp extends AppSpec {
  child: ChildProcess;
  url: string;
}

interface Measurement {
  rps: number[];
  latencies: number[];
  non2xx: number;
  errors: number;
  /** CPU time, in µs, the app's process and redis-server used during the measured rounds. */
  appCpu: number;
  redisCpu: number;
}

const emptyMeasurement = (): Measurement => ({ rps: [], latencies: [], non2xx: 0, errors: 0, appCpu: 0, redisCpu: 0 });

const children: ChildProcess[] = [];

async function startApp(
  spec: AppSpec,
  adapter: HttpAdapterName,
  redisUrl: string,
  namespace: string,
): Promise<RunningApp> {
  const profile = CPU_PROF_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${resolve(CPU_PROF_DIR)}`, `--cpu-prof-name=${adapter}-${spec.slug}.cpuprofile`]
    : [];
  const child = fork(fileURLToPath(new URL('./support/http-app.js', import.meta.url)), [], {
    env: {
      ...process.env,
      BENCH_APP_MODE: spec.mode,
      BENCH_HTTP_ADAPTER: adapter,
      BENCH_REDIS_URL: redisUrl,
      BENCH_QUERY_DELAY_MS: String(spec.queryDelayMs),
      BENCH_NAMESPACE: namespace,
    },
    execArgv: [...process.execArgv, ...profile],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${adapter} ${spec.label}: not ready after ${READY_TIMEOUT_MS} ms`));
    }, READY_TIMEOUT_MS);
    child.once('message', (message: HttpAppMessage) => {
      clearTimeout(timer);
      if (message.type === 'ready') resolve(message.port);
      else reject(new Error(`${adapter} ${spec.label}: sent ${message.type} before ready`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${adapter} ${spec.label}: exited (${signal ?? code}) before listening`));
    });
  });
  return { ...spec, child, url: `http://127.0.0.1:${port}` };
}

/** One autocannon run of `ms` against `app`: its requests/s and every response's latency. */
async function load(app: RunningApp, ms: number): Promise<Measurement> {
  const round = emptyMeasurement();
  let next = 0;
  let responses = 0;
  let started = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: app.url,
        connections: CONNECTIONS,
        duration: ms / 1_000,
        requests: [
          {
            method: 'GET',
            // Rebuilt for every request: ids 1..50 in turn, across all connections.
            setupRequest: (request) => ({ ...request, path: `/users/${(next++ % USER_IDS) + 1}` }),
          },
        ],
      },
      (error: unknown, done: autocannon.Result) => (error ? reject(error) : resolve(done)),
    );
    started = performance.now();
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      responses++;
      round.latencies.push(responseTime);
      if (statusCode !== 200) round.non2xx++;
    });
  });
  round.rps.push((responses * 1_000) / (performance.now() - started));
  round.errors = result.errors;
  return round;
}

/** CPU time (user + system, µs) the app's process has used so far. */
function appCpu(app: RunningApp): Promise<number> {
  return new Promise((resolve) => {
    const answer = (message: HttpAppMessage) => {
      if (message.type !== 'cpu') return;
      app.child.off('message', answer);
      resolve(message.micros);
    };
    app.child.on('message', answer);
    app.child.send({ type: 'cpu' });
  });
}

/** CPU time (user + system, µs) redis-server has used so far, from `INFO cpu`. */
async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
}

async function getJson(url: string): Promise<{ body: unknown; xCache: string | null; status: number }> {
  const response = await fetch(url);
  return { body: await response.json(), xCache: response.headers.get('x-cache'), status: response.status };
}

async function findByIdMisses(app: RunningApp): Promise<number> {
  const stats = (await getJson(`${app.url}/cache/stats`)).body as { byName: Record<string, { misses: number }> };
  return stats.byName['UsersService.findById']?.misses ?? 0;
}

/** Warms the cached app, then checks the apps answer alike and only the cached one from the cache. */
async function warmAndCheck(apps: RunningApp[], adapter: HttpAdapterName): Promise<void> {
  const [cached] = apps;
  for (let id = 1; id <= USER_IDS; id++) await getJson(`${cached.url}/users/${id}`);
  for (const id of [1, 50]) {
    const answers = await Promise.all(apps.map((app) => getJson(`${app.url}/users/${id}`)));
    if (answers.some(({ status }) => status !== 200)) {
      throw new Error(`${adapter}: GET /users/${id} is not a 200 everywhere`);
    }
    if (!answers.every(({ body }) => isDeepStrictEqual(body, answers[0].body))) {
      throw new Error(`${adapter}: the apps answer GET /users/${id} differently`);
    }
    if (answers[0].xCache !== 'HIT' || answers.slice(1).some(({ xCache }) => xCache !== null)) {
      throw new Error(`${adapter}: X-Cache of GET /users/${id}: ${answers.map(({ xCache }) => xCache).join(', ')}`);
    }
  }
}

/** Interleaved rounds over one adapter's apps, each round checked as soon as it ends. */
async function measure(apps: RunningApp[], adapter: HttpAdapterName, redis: Redis): Promise<Measurement[]> {
  const [cached] = apps;
  const measured = apps.map(emptyMeasurement);
  let misses = await findByIdMisses(cached);
  for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
    for (let step = 0; step < apps.length; step++) {
      const index = (Math.max(round, 0) + step) % apps.length;
      const app = apps[index];
      const cpuBefore = await Promise.all([appCpu(app), redisCpu(redis)]);
      const result = await load(app, round < 0 ? Math.min(ROUND_MS, 1_000) : ROUND_MS);
      const cpuAfter = await Promise.all([appCpu(app), redisCpu(redis)]);
      const where = `${adapter}, ${app.label}, ${round < 0 ? 'warm-up round' : `round ${round + 1}`}`;
      if (result.non2xx > 0 || result.errors > 0) {
        throw new Error(`${where}: ${result.non2xx} non-200 responses, ${result.errors} errors`);
      }
      if (index === 0) {
        const after = await findByIdMisses(cached);
        if (after !== misses) throw new Error(`${where}: ${after - misses} cache misses, expected none`);
        misses = after;
      }
      if (round < 0) continue;
      measured[index].rps.push(...result.rps);
      measured[index].latencies.push(...result.latencies);
      measured[index].appCpu += cpuAfter[0] - cpuBefore[0];
      measured[index].redisCpu += cpuAfter[1] - cpuBefore[1];
    }
  }
  return measured;
}

/** CPU µs per measured request (autocannon's own CPU, the same for every app, is left out). */
function perRequest(measurement: Measurement, cpu: 'appCpu' | 'redisCpu'): number {
  return measurement[cpu] / measurement.latencies.length;
}

/** Cached / `other` per round and their median. */
function ratios(cached: Measurement, other: Measurement): { median: number; rounds: number[] } {
  const rounds = cached.rps.map((rps, round) => rps / other.rps[round]);
  return { median: median(rounds), rounds };
}

function report(adapter: HttpAdapterName, apps: RunningApp[], measured: Measurement[]): number {
  const { title, packages } = PLATFORMS[adapter];
  console.log(`${title} (${packages.map((name) => `${name} ${packageVersion(name)}`).join(', ')})`);
  const widths = [30, 9, 9, 9, 10, 10, 17];
  const row = (cells: string[]) =>
    cells.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join(' ');
  console.log(row(['app', 'req/s', 'p50 ms', 'p99 ms', 'app µs/req', 'redis µs', 'cached/this req/s']));
  apps.forEach((app, i) => {
    const latencies = Float64Array.from(measured[i].latencies).sort();
    console.log(
      row([
        app.label,
        Math.round(median(measured[i].rps)).toLocaleString('en-US'),
        percentile(latencies, 0.5).toFixed(2),
        percentile(latencies, 0.99).toFixed(2),
        perRequest(measured[i], 'appCpu').toFixed(0),
        perRequest(measured[i], 'redisCpu').toFixed(0),
        i === 0 ? '-' : `${ratios(measured[0], measured[i]).median.toFixed(2)}x`,
      ]),
    );
  });
  for (const [i, app] of apps.entries()) {
    if (i === 0) continue;
    const { median: ratio, rounds } = ratios(measured[0], measured[i]);
    console.log(
      `cached / ${app.label}: ${ratio.toFixed(2)}x requests/s (rounds: ${rounds.map((r) => r.toFixed(2)).join(' ')})`,
    );
  }
  const cpu = measured.slice(0, 2).map((m) => perRequest(m, 'appCpu') + perRequest(m, 'redisCpu'));
  console.log(
    `CPU per request, app + redis-server: cached ${cpu[0].toFixed(0)} µs, ceiling ${cpu[1].toFixed(0)} µs: ` +
      `the cache adds ${(cpu[0] - cpu[1]).toFixed(0)} µs (ceiling / cached = ${(cpu[1] / cpu[0]).toFixed(2)})`,
  );
  const requests = measured.reduce((sum, m) => sum + m.latencies.length, 0);
  console.log(
    `${requests.toLocaleString('en-US')} measured requests, all 200; the cached app served every one from ` +
      `the cache (no miss in any round).\n`,
  );
  return ratios(measured[0], measured[1]).median;
}

async function runAdapter(adapter: HttpAdapterName, server: LocalRedisServer, redis: Redis): Promise<number> {
  const started = await Promise.allSettled(
    specs.map((spec, i) => startApp(spec, adapter, server.url, `http-bench-${adapter}-${i}`)),
  );
  const apps = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  try {
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    await warmAndCheck(apps, adapter);
    return report(adapter, apps, await measure(apps, adapter, redis));
  } finally {
    await Promise.all(apps.map(({ child }) => stopChild(child)));
  }
}

async function main(server: LocalRedisServer): Promise<void> {
  const adapters = ADAPTERS.map((name) => {
    if (!(name in PLATFORMS)) throw new Error(`BENCH_ADAPTERS: express and/or fastify, got ${name}`);
    return name as HttpAdapterName;
  });
  console.log(
    `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, autocannon ` +
      `${packageVersion('autocannon')}, redis-server on loopback; ${cpus().length} CPUs ` +
      `(${cpus()[0]?.model.trim()}), load average ${loadavg()[0].toFixed(2)}`,
  );
  console.log(
    `GET /users/:id (ids 1..${USER_IDS} in turn), ${CONNECTIONS} keep-alive connections; per adapter ${ROUNDS} ` +
      `interleaved rounds of ${ROUND_MS} ms per app after ${WARMUP_ROUNDS} warm-up round; req/s = median ` +
      `of rounds, p50/p99 = over all measured requests, ratio = median of per-round ratios\n`,
  );
  const ceilingRatios: string[] = [];
  // Reads redis-server's CPU time between rounds; idle during them.
  const redis = new Redis(server.url);
  try {
    for (const adapter of adapters) {
      const ratio = await runAdapter(adapter, server, redis);
      ceilingRatios.push(
        `${PLATFORMS[adapter].title} ${ratio.toFixed(2)}x (${ratio >= CEILING_GOAL ? 'met' : 'not met'})`,
      );
    }
  } finally {
    redis.disconnect();
  }
  console.log(
    `cached / ceiling, goal >= ${CEILING_GOAL}x: ${ceilingRatios.join(', ')}; load average ${loadavg()[0].toFixed(2)}`,
  );
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.send({ type: 'stop' });
  else child.kill('SIGTERM');
  const escalate = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(escalate);
}

// The compiled sample app imports the library by its package name (and `/prometheus`): make those
// names resolve, by self-reference, to the sources compiled beside it in .tmp/bench rather than to dist/.
writeFileSync(
  new URL('../package.json', import.meta.url),
  JSON.stringify({
    name: 'nestjs-redis-cache',
    private: true,
    type: 'module',
    exports: { '.': './lib/index.js', './*': './lib/*/index.js' },
  }),
);

await runBench('http bench', DEADLINE_S, main, () => {
  for (const child of children) child.kill('SIGKILL');
});
