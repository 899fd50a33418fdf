import 'reflect-metadata';
import { Injectable, type INestApplication, type LoggerService, type ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { Cacheable, CacheService, RedisCacheModule, type RedisCacheModuleOptions } from 'nestjs-redis-cache';
import { measureStalls } from './stall-meter.js';
import { uniqueNamespace } from './test-app.js';

/** The `commandTimeout` of every fault test: small, so an outage costs each call little. */
export const COMMAND_TIMEOUT_MS = 100;

/**
 * The longest a call may take while Redis is down, slow or returning garbage, not counting the time
 * the process itself could not run (`activeMs`): `commandTimeout` plus room for a noisy 2-core
 * machine running the whole suite, a local cluster and a Sentinel deployment (a burst of 500 calls
 * once took 259 ms there). The source itself answers in ~2 ms; a call that waited for two timeouts
 * in a row would take over 200 ms plus the same noise.
 */
export const CALL_BOUND_MS = COMMAND_TIMEOUT_MS + 200;

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
  /** When it was logged (`performance.now()`). */
  at: number;
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

  /** The outage and recovery announcements from index `since` on, in order, with their times. */
  health(since = 0): Array<{ kind: 'outage' | 'recovery'; at: number }> {
    return this.lines.slice(since).flatMap((line): Array<{ kind: 'outage' | 'recovery'; at: number }> => {
      if (line.context !== 'RedisCache') return [];
      if (line.level === 'warn' && line.message.includes('unavailable'))
        return [{ kind: 'outage' as const, at: line.at }];
      if (line.level === 'log' && line.message.includes('recovered'))
        return [{ kind: 'recovery' as const, at: line.at }];
      return [];
    });
  }

  /** The recovery announcements from index `since` on. */
  recoveries(since = 0): string[] {
    return this.cacheLines('log', since).filter((message) => message.includes('recovered'));
  }

  private record(level: LogLine['level'], message: unknown, params: unknown[]): void {
    // Nest's Logger passes its context as the last parameter.
    const last = params.at(-1);
    this.lines.push({
      level,
      context: typeof last === 'string' ? last : undefined,
      message: String(message),
      at: performance.now(),
    });
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
 * A Nest application with `CatalogSource` whose cache talks to `redis` (a server the test owns: its
 * URL, or any other form of the module's `redis` option, e.g. a cluster's nodes) with a 100 ms
 * `commandTimeout`, and whose log lines are recorded. Call `app.close()`.
 */
export async function createFaultApp(
  redis: RedisCacheModuleOptions['redis'],
  { providers = [], cache = {} }: { providers?: ModuleMetadata['providers']; cache?: RedisCacheModuleOptions } = {},
): Promise<FaultApp> {
  const namespace = uniqueNamespace('fault');
  const moduleRef = await Test.createTestingModule({
    // No startup advisor (see test-app.ts): its commands would compete with the first calls' 100 ms.
    imports: [
      RedisCacheModule.forRoot({
        redis,
        namespace,
        commandTimeout: COMMAND_TIMEOUT_MS,
        startupAdvisor: false,
        ...cache,
      }),
    ],
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

/**
 * A timed call: `ms` is its wall-clock duration, `activeMs` the same minus the time this process
 * could not run meanwhile (see stall-meter.ts). Bounds on what a call waits for use `activeMs`.
 */
export interface Timed<T> {
  value: T;
  ms: number;
  activeMs: number;
}

/** Runs `call` and measures it. */
export async function timed<T>(call: () => Promise<T>): Promise<Timed<T>> {
  const stalls = measureStalls();
  const started = performance.now();
  try {
    const value = await call();
    const ms = performance.now() - started;
    return { value, ms, activeMs: ms - stalls() };
  } catch (error) {
    stalls();
    throw error;
  }
}

/** Values of timed calls, with the slowest call's wall-clock duration and its slowest `activeMs`. */
export interface TimedCalls<T> {
  values: T[];
  maxMs: number;
  maxActiveMs: number;
}

function slowest<T>(results: Array<Timed<T>>): TimedCalls<T> {
  return {
    values: results.map((result) => result.value),
    maxMs: Math.max(...results.map((result) => result.ms)),
    maxActiveMs: Math.max(...results.map((result) => result.activeMs)),
  };
}

/** Runs `calls` at once. */
export async function timedAll<T>(calls: Array<() => Promise<T>>): Promise<TimedCalls<T>> {
  return slowest(await Promise.all(calls.map((call) => timed(call))));
}

/** Runs `calls` one after another. */
export async function timedSequence<T>(calls: Array<() => Promise<T>>): Promise<TimedCalls<T>> {
  const results: Array<Timed<T>> = [];
  for (const call of calls) results.push(await timed(call));
  return slowest(results);
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
    const { activeMs } = await timed(() => source.find(id));
    expect(activeMs).toBeLessThan(CALL_BOUND_MS);
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
