/**
 * The cache-hit path through the sample app over HTTP, against the same request when the cache
 * cannot serve it. Three sample apps, each in its own process (support/http-app.ts), all on one
 * throwaway redis-server (started here, stopped at the end), each with an in-memory SQLite database
 * seeded with the same 50 users:
 *   - cached: the sample app as users run it, warmed so every `GET /users/:id` is a cache hit,
 *   - uncached, 0 ms: the same app with `UsersService.findById` undecorated, `QUERY_DELAY_MS=0`:
 *     every request is the real SQLite read and nothing else (the fairest uncached case; in-process
 *     SQLite by primary key is about as cheap as a source gets),
 *   - uncached, 50 ms: the same with the sample app's default delay, standing in for a networked
 *     database.
 * autocannon (in this process) sends `GET /users/:id` over keep-alive connections, ids 1..50 in
 * turn, so concurrent requests are for different users and single-flight never merges them.
 * Interleaved rounds (order rotated per round); prints median requests/s, p50/p99 latency over every
 * measured request, and cached/uncached ratios (median of per-round ratios). Checks that no measured
 * request of the cached app missed and that every response was a 200.
 *
 * Run: npm run bench:http
 * Knobs: BENCH_ROUND_MS (default 2000), BENCH_ROUNDS (12), BENCH_CONNECTIONS (32), BENCH_DEADLINE_S (110).
 */
import autocannon from 'autocannon';
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { LocalRedisServer } from '../tools/local-redis-server.mjs';
import { runBench } from './support/run-bench.js';
import { median } from './support/async-harness.js';
import type { HttpAppMessage, HttpAppMode } from './support/http-app.js';
import { packageVersion } from './support/package-version.js';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 2_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 12);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 110);
const WARMUP_ROUNDS = 1;
const READY_TIMEOUT_MS = 30_000;
/** The seed's users: ids 1..50. */
const USER_IDS = 50;

interface AppSpec {
  label: string;
  mode: HttpAppMode;
  queryDelayMs: number;
}

const specs: AppSpec[] = [
  { label: 'cached (hits)', mode: 'cached', queryDelayMs: 50 },
  { label: 'uncached, query delay 0 ms', mode: 'uncached', queryDelayMs: 0 },
  { label: 'uncached, query delay 50 ms', mode: 'uncached', queryDelayMs: 50 },
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
}

const children: ChildProcess[] = [];

async function startApp(spec: AppSpec, redisUrl: string, index: number): Promise<RunningApp> {
  const child = fork(fileURLToPath(new URL('./support/http-app.js', import.meta.url)), [], {
    env: {
      ...process.env,
      BENCH_APP_MODE: spec.mode,
      BENCH_REDIS_URL: redisUrl,
      BENCH_QUERY_DELAY_MS: String(spec.queryDelayMs),
      BENCH_NAMESPACE: `http-bench-${index}`,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${spec.label}: not ready after ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
    child.once('message', (message: HttpAppMessage) => {
      clearTimeout(timer);
      resolve(message.port);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${spec.label}: exited (${signal ?? code}) before listening`));
    });
  });
  return { ...spec, child, url: `http://127.0.0.1:${port}` };
}

/** One autocannon run of `ms` against `app`; appends every response's latency to `into`. */
async function load(app: RunningApp, ms: number, into: Measurement): Promise<void> {
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
      into.latencies.push(responseTime);
      if (statusCode !== 200) into.non2xx++;
    });
  });
  into.rps.push((responses * 1_000) / (performance.now() - started));
  into.errors += result.errors;
}

async function getJson(url: string): Promise<{ body: unknown; xCache: string | null; status: number }> {
  const response = await fetch(url);
  return { body: await response.json(), xCache: response.headers.get('x-cache'), status: response.status };
}

async function findByIdMisses(app: RunningApp): Promise<number> {
  const stats = (await getJson(`${app.url}/cache/stats`)).body as { byName: Record<string, { misses: number }> };
  return stats.byName['UsersService.findById']?.misses ?? 0;
}

async function main(server: LocalRedisServer): Promise<void> {
  const apps = await Promise.all(specs.map((spec, i) => startApp(spec, server.url, i)));
  try {
    const [cached, ...uncached] = apps;
    // Warm the cache, then check the apps answer the same and only the cached one from the cache.
    for (let id = 1; id <= USER_IDS; id++) await getJson(`${cached.url}/users/${id}`);
    for (const id of [1, 50]) {
      const answers = await Promise.all(apps.map((app) => getJson(`${app.url}/users/${id}`)));
      if (answers.some(({ status }) => status !== 200)) throw new Error(`GET /users/${id} is not a 200 everywhere`);
      if (!answers.every(({ body }) => isDeepStrictEqual(body, answers[0].body))) {
        throw new Error(`the apps answer GET /users/${id} differently`);
      }
      if (answers[0].xCache !== 'HIT' || answers.slice(1).some(({ xCache }) => xCache !== null)) {
        throw new Error(`X-Cache of GET /users/${id}: ${answers.map(({ xCache }) => xCache).join(', ')}`);
      }
    }
    const missesAfterWarmUp = await findByIdMisses(cached);

    console.log(
      `node ${process.version}, @nestjs/core ${packageVersion('@nestjs/core')}, autocannon ` +
        `${packageVersion('autocannon')}, redis-server on loopback; ${cpus().length} CPUs ` +
        `(${cpus()[0]?.model.trim()}), load average ${loadavg()[0].toFixed(2)}`,
    );
    console.log(
      `GET /users/:id (ids 1..${USER_IDS} in turn), ${CONNECTIONS} keep-alive connections; ${ROUNDS} ` +
        `interleaved rounds of ${ROUND_MS} ms per app after ${WARMUP_ROUNDS} warm-up round; req/s = median ` +
        `of rounds, p50/p99 = over all measured requests, ratio = median of per-round ratios\n`,
    );

    const measured = apps.map((): Measurement => ({ rps: [], latencies: [], non2xx: 0, errors: 0 }));
    for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
      for (let step = 0; step < apps.length; step++) {
        const index = (Math.max(round, 0) + step) % apps.length;
        const scratch: Measurement = { rps: [], latencies: [], non2xx: 0, errors: 0 };
        await load(
          apps[index],
          round < 0 ? Math.min(ROUND_MS, 1_000) : ROUND_MS,
          round < 0 ? scratch : measured[index],
        );
      }
    }

    const widths = [30, 9, 9, 9, 17];
    const row = (cells: string[]) =>
      cells.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join(' ');
    console.log(row(['app', 'req/s', 'p50 ms', 'p99 ms', 'cached/this req/s']));
    apps.forEach((app, i) => {
      const latencies = Float64Array.from(measured[i].latencies).sort();
      const ratio = median(measured[0].rps.map((rps, round) => rps / measured[i].rps[round]));
      console.log(
        row([
          app.label,
          Math.round(median(measured[i].rps)).toLocaleString('en-US'),
          percentile(latencies, 0.5).toFixed(2),
          percentile(latencies, 0.99).toFixed(2),
          i === 0 ? '-' : `${ratio.toFixed(2)}x`,
        ]),
      );
    });
    console.log();
    for (const [i, app] of uncached.entries()) {
      const ratio = median(measured[0].rps.map((rps, round) => rps / measured[i + 1].rps[round]));
      const perRound = measured[0].rps.map((rps, round) => (rps / measured[i + 1].rps[round]).toFixed(2));
      console.log(`cached / ${app.label}: ${ratio.toFixed(2)}x requests/s (rounds: ${perRound.join(' ')})`);
    }

    const failures = measured.reduce((sum, m) => sum + m.non2xx + m.errors, 0);
    const misses = (await findByIdMisses(cached)) - missesAfterWarmUp;
    if (failures > 0 || misses !== 0) {
      throw new Error(`${failures} failed or non-200 responses, ${misses} cache misses in the cached app`);
    }
    const requests = measured.reduce((sum, m) => sum + m.latencies.length, 0);
    console.log(
      `\n${requests.toLocaleString('en-US')} measured requests, all 200; the cached app served every one ` +
        `from the cache (no miss after the warm-up).`,
    );
  } finally {
    await Promise.all(apps.map(({ child }) => stopChild(child)));
  }
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

// The compiled sample app imports the library by its package name: make that name resolve, by
// self-reference, to the sources compiled beside it in .tmp/bench rather than to dist/.
writeFileSync(
  new URL('../package.json', import.meta.url),
  JSON.stringify({ name: 'nestjs-redis-cache', private: true, type: 'module', exports: { '.': './lib/index.js' } }),
);

await runBench('http bench', DEADLINE_S, main, () => {
  for (const child of children) child.kill('SIGKILL');
});
