import 'reflect-metadata';
import { Injectable, type INestApplication, type LoggerService, type ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { Cacheable, CacheService, RedisCacheModule, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { uniqueNamespace } from './test-app.js';

/** The `commandTimeout` of every fault test: small, so an outage costs each call little. */
export const COMMAND_TIMEOUT_MS = 100;

/**
 * The longest a call may take while Redis is down, slow or returning garbage: `commandTimeout` plus
 * room for a noisy 2-core machine. The source itself answers in ~2 ms.
 */
export const CALL_BOUND_MS = COMMAND_TIMEOUT_MS + 150;

/** A source whose every answer is told apart by `load`, so a test sees whether the cache or the source answered. */
@Injectable()
export class CatalogSource {
  loads = 0;

  @Cacheable({ key: 'item:{0}', ttl: 60 })
  async find(id: number): Promise<{ id: number; load: number }> {
    const load = ++this.loads;
    await new Promise((resolve) => setTimeout(resolve, 2));
    return { id, load };
  }
}

/** The metrics name of `CatalogSource.find`. */
export const FIND = 'CatalogSource.find';

export interface LogLine {
  level: 'log' | 'warn' | 'error' | 'debug' | 'verbose' | 'fatal';
  context: string | undefined;
  message: string;
}

/** A Nest logger that keeps every line, so a test can count what an outage logged. */
export class LogRecorder implements LoggerService {
  readonly lines: LogLine[] = [];

  log(message: unknown, ...params: unknown[]): void {
    this.record('log', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.record('warn', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.record('error', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.record('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.record('verbose', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.record('fatal', message, params);
  }

  /** The lines the `RedisCache` context wrote at `level`, from index `since` on. */
  cacheLines(level: LogLine['level'], since = 0): string[] {
    return this.lines
      .slice(since)
      .filter((line) => line.level === level && line.context === 'RedisCache')
      .map((line) => line.message);
  }

  /** The outage announcements (`unavailable` warnings) from index `since` on. */
  outages(since = 0): string[] {
    return this.cacheLines('warn', since).filter((message) => message.includes('unavailable'));
  }

  /** The recovery announcements from index `since` on. */
  recoveries(since = 0): string[] {
    return this.cacheLines('log', since).filter((message) => message.includes('recovered'));
  }

  private record(level: LogLine['level'], message: unknown, params: unknown[]): void {
    // Nest's Logger passes its context as the last parameter.
    const last = params.at(-1);
    this.lines.push({ level, context: typeof last === 'string' ? last : undefined, message: String(message) });
  }
}

export interface FaultApp {
  app: INestApplication;
  source: CatalogSource;
  cache: CacheService;
  logs: LogRecorder;
  namespace: string;
  /** How long `app.init()` took. */
  initMs: number;
  /** `${namespace}:item:${id}`, the Redis key `CatalogSource.find(id)` uses. */
  itemKey(id: number): string;
}

/**
 * A Nest application with `CatalogSource` whose cache talks to `redisUrl` (a server the test owns)
 * with a 100 ms `commandTimeout`, and whose log lines are recorded. Call `app.close()`.
 */
export async function createFaultApp(
  redisUrl: string,
  { providers = [], cache = {} }: { providers?: ModuleMetadata['providers']; cache?: RedisCacheModuleOptions } = {},
): Promise<FaultApp> {
  const namespace = uniqueNamespace('fault');
  const moduleRef = await Test.createTestingModule({
    imports: [RedisCacheModule.forRoot({ redis: redisUrl, namespace, commandTimeout: COMMAND_TIMEOUT_MS, ...cache })],
    providers: [CatalogSource, ...providers],
  }).compile();
  const logs = new LogRecorder();
  const app = moduleRef.createNestApplication({ logger: logs });
  const started = performance.now();
  await app.init();
  const initMs = performance.now() - started;
  return {
    app,
    source: app.get(CatalogSource),
    cache: app.get(CacheService),
    logs,
    namespace,
    initMs,
    itemKey: (id) => `${namespace}:item:${id}`,
  };
}

/** Runs `call` and measures it. */
export async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await call();
  return { value, ms: performance.now() - started };
}

/** Runs `calls` at once and returns their values and the slowest call's duration. */
export async function timedAll<T>(calls: Array<() => Promise<T>>): Promise<{ values: T[]; maxMs: number }> {
  const results = await Promise.all(calls.map((call) => timed(call)));
  return { values: results.map((result) => result.value), maxMs: Math.max(...results.map((result) => result.ms)) };
}

/** Runs `calls` one after another and returns their values and the slowest call's duration. */
export async function timedSequence<T>(calls: Array<() => Promise<T>>): Promise<{ values: T[]; maxMs: number }> {
  const values: T[] = [];
  let maxMs = 0;
  for (const call of calls) {
    const result = await timed(call);
    values.push(result.value);
    maxMs = Math.max(maxMs, result.ms);
  }
  return { values, maxMs };
}

/**
 * Polls `check` every 25 ms until it returns true; fails after `timeoutMs`. For waiting on a real
 * condition (a reconnect, a hit) instead of sleeping a guessed time.
 */
export async function eventually(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** `count` consecutive integers from `from`. */
export function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

/**
 * Calls `find(id)` until one is served from the cache: the cache reconnected, read, wrote and read
 * again. Every call on the way must stay within {@link CALL_BOUND_MS}.
 */
export async function waitForHit({ source, cache }: FaultApp, id: number): Promise<void> {
  await eventually(`find(${id}) is a hit`, async () => {
    const before = outcomes(cache, FIND).hits;
    const { ms } = await timed(() => source.find(id));
    expect(ms).toBeLessThan(CALL_BOUND_MS);
    return outcomes(cache, FIND).hits > before;
  });
}

/**
 * Calls of each outcome recorded under `name`: `failed` (outcome `error`) is not in the stats, but
 * every recorded call has a latency sample, so it is the calls that were neither hit nor miss.
 */
export function outcomes(
  cache: CacheService,
  name: string,
): { hits: number; misses: number; failed: number; errors: number; calls: number } {
  const stats = cache.stats().byName[name];
  if (!stats) return { hits: 0, misses: 0, failed: 0, errors: 0, calls: 0 };
  return {
    hits: stats.hits,
    misses: stats.misses,
    failed: stats.failedCalls,
    errors: stats.errors,
    calls: stats.latency.count,
  };
}

/** ioredis's internal queues, to show that calls don't pile up behind a dead or hung connection. */
export function queues(client: unknown): { offline: number; command: number } {
  const internals = client as { offlineQueue: { length: number }; commandQueue: { length: number } };
  return { offline: internals.offlineQueue.length, command: internals.commandQueue.length };
}

/** A plain client for a test's own server, to inspect or disturb what the cache sees. */
export function adminClient(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1 });
}

/**
 * Resolves once the server behind `probe` (a connected client) stops answering PING within 50 ms,
 * e.g. after `DEBUG SLEEP` was sent on another connection. The PINGs left waiting answer later.
 */
export async function waitUntilUnresponsive(probe: Redis, timeoutMs = 2_000): Promise<void> {
  await eventually(
    'the server stops answering',
    () =>
      Promise.race([
        probe.ping().then(
          () => false,
          () => false,
        ),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 50)),
      ]),
    timeoutMs,
  );
}
