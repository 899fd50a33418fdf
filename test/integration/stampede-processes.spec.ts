// Cross-process stampede protection with real processes: 4 node children (test/support/stampede-worker.ts,
// compiled by tsc into .tmp/) share one Redis and namespace, and each fires 250 concurrent calls of a
// decorated method on the same cold key. The Redis is this file's own (a redis-server, or a 3-primary
// cluster in the cluster project), so its INFO commandstats count only what the workers send.
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { INestApplication } from '@nestjs/common';
import { CacheService } from 'nestjs-redis-cache';
import { startOwnRedis, type OwnRedis } from '../support/own-redis.js';
import {
  cacheKeyOf,
  executionsKey,
  IMPATIENT_LOCK_WAIT_MS,
  SHORT_LEASE_TTL_MS,
  type ParentMessage,
  type RunReport,
  type StampedeMethod,
  type StampedeValue,
  type WorkerMessage,
} from '../support/stampede-protocol.js';
import { createTestApp, uniqueNamespace } from '../support/test-app.js';
import { compileWorker, redisEnv, spawnWorker, stopWorkers, type WorkerHandle } from '../support/worker-processes.js';

const ROOT = process.cwd();
const WORKER_JS = join(ROOT, '.tmp/stampede-worker/test/support/stampede-worker.js');
const PROCESSES = 4;
const CALLS = 250;
/** Room for a noisy 2-core machine in every time bound. */
const SLACK_MS = 1_500;

type Worker = WorkerHandle<WorkerMessage, ParentMessage>;

interface RunResult {
  startAt: number;
  reports: Map<number, RunReport>;
  /** The `executing` messages, in arrival order. */
  executing: Array<Extract<WorkerMessage, { type: 'executing' }>>;
  executions: number;
  /** Redis commands per name sent while the run was going (INFO commandstats delta). */
  commands: Record<string, number>;
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const diff: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after)) {
    const d = calls - (before[name] ?? 0);
    // The parent's own INFO is not the workers'; nor are a Cluster client's CLUSTER SLOTS, which it
    // sends every 5 s on its own to keep its map of the slots current.
    if (d > 0 && name !== 'info' && !name.startsWith('cluster|')) diff[name] = d;
  }
  return diff;
}

/**
 * What a connection sends when it opens: ioredis 6 says HELLO (RESP3) on every new connection, and a
 * Cluster client opens its node connections when it first needs them, which can fall in a measured
 * run or not. A cost of connecting, not of waiting.
 */
const HANDSHAKE = new Set(['hello', 'client|setname', 'client|setinfo', 'select', 'auth', 'info', 'readonly']);

/**
 * A script sent whole (EVAL) after the server answered NOSCRIPT to its SHA (lua-script.ts): the cost
 * of a node seeing a script for the first time, which falls in whichever run that happens in.
 */
const SCRIPT_LOADS = new Set(['eval']);

/**
 * Commands sent, but for PUBLISH (each app publishes its subscription's heartbeat every second,
 * namespace-subscriber.ts: a cost of the time the run takes, not of waiting), handshakes and script loads.
 */
const total = (commands: Record<string, number>) =>
  Object.entries(commands).reduce(
    (sum, [name, n]) => sum + (name === 'publish' || HANDSHAKE.has(name) || SCRIPT_LOADS.has(name) ? 0 : n),
    0,
  );

/** The one value every caller of a report got (the report must hold exactly one and no errors). */
function valuesOf(report: RunReport): StampedeValue[] {
  return Object.keys(report.values).map((json) => JSON.parse(json) as StampedeValue);
}

describe('stampede across processes (4 processes x 250 calls, one Redis)', () => {
  let server: OwnRedis;
  let admin: Redis;
  let reader: INestApplication | undefined;
  const namespace = uniqueNamespace('stampede');
  const workers: Worker[] = [];
  let keys = 0;

  beforeAll(async () => {
    await compileWorker('test/support/tsconfig.stampede-worker.json', WORKER_JS);
    server = await startOwnRedis();
    admin = server.client();
    const env = {
      ...redisEnv('STAMPEDE', server.connection),
      STAMPEDE_NAMESPACE: namespace,
      // Generous: a command past it on a loaded machine would be an outage, which this file does not test.
      STAMPEDE_COMMAND_TIMEOUT_MS: '2000',
    };
    for (let n = 0; n < PROCESSES; n++) workers.push(spawnWorker(WORKER_JS, env));
    await Promise.all(workers.map((worker) => worker.ready));
  }, 60_000);

  afterAll(async () => {
    await stopWorkers(workers);
    await reader?.close();
    admin?.disconnect();
    await server?.stop();
  }, 20_000);

  /**
   * Every live worker fires `calls` calls of `method(key, methodMs)` at the same moment; resolves
   * when each worker that is still alive reported. `onExecuting` sees each execution as it starts.
   * Runs given the same `hashTag` use keys of one slot, so on a cluster they meet the same primary.
   */
  async function run(
    method: StampedeMethod,
    methodMs: number,
    {
      onExecuting,
      hashTag,
    }: { onExecuting?: (message: Extract<WorkerMessage, { type: 'executing' }>) => void; hashTag?: string } = {},
  ): Promise<RunResult & { key: string }> {
    const key = `k${++keys}-${Date.now().toString(36)}${hashTag ? `-{${hashTag}}` : ''}`;
    const live = workers.filter((worker) => worker.alive);
    expect(live).toHaveLength(PROCESSES);
    const before = await server.commandStats();
    const startAt = Date.now() + 200;
    const result: RunResult = { startAt, reports: new Map(), executing: [], executions: 0, commands: {} };
    await Promise.all(
      live.map(async (worker) => {
        const done = worker.next(
          (message): message is Extract<WorkerMessage, { type: 'done' }> => {
            if (message.type === 'executing' && message.key === key) {
              result.executing.push(message);
              onExecuting?.(message);
            }
            return message.type === 'done' && message.key === key;
          },
          15_000,
          `its report of ${key}`,
        );
        worker.send({ type: 'run', method, key, methodMs, calls: CALLS, startAt });
        try {
          result.reports.set(worker.pid, (await done).report);
        } catch (error) {
          // A worker killed by the test counts as done; any other exit is a failure.
          if (worker.alive || worker.child.signalCode !== 'SIGKILL') throw error;
        }
      }),
    );
    result.commands = delta(await server.commandStats(), before);
    result.executions = Number((await admin.get(executionsKey(method, key))) ?? 0);
    return { ...result, key };
  }

  /** What the cache holds for `method(key)`, read through a CacheService on the same namespace. */
  async function cached(method: StampedeMethod, key: string): Promise<StampedeValue | undefined> {
    reader ??= await createTestApp({ cache: { redis: server.connection, namespace } });
    return reader.get(CacheService).get<StampedeValue>(cacheKeyOf(method, key));
  }

  it('runs the method once in total, and all 1000 callers get its value', async () => {
    const { reports, executions, key } = await run('compute', 300);
    expect(executions).toBe(1);
    expect(reports.size).toBe(PROCESSES);
    for (const report of reports.values()) {
      expect(report.errors).toEqual([]);
      expect(Object.values(report.values)).toEqual([CALLS]);
    }
    const distinct = new Set([...reports.values()].flatMap((report) => Object.keys(report.values)));
    expect(distinct.size).toBe(1);
    const [value] = valuesOf([...reports.values()][0]!);
    expect(value).toMatchObject({ key, execution: 1 });
    expect([...reports.values()].reduce((sum, report) => sum + report.executions.length, 0)).toBe(1);
    expect(await cached('compute', key)).toEqual(value);
  });

  it('wakes waiters when the value lands (pub/sub): few Redis commands whatever the wait, no sleep-polling', async () => {
    // Warm-up: scripts loaded, connections used once. On a cluster that is per primary, so the three
    // runs share a slot: the measured ones then pay only for the wait, on a warm node.
    await run('compute', 20, { hashTag: 'wakes' });
    const short = await run('compute', 500, { hashTag: 'wakes' });
    const long = await run('compute', 2_000, { hashTag: 'wakes' });
    const lags: number[] = [];
    for (const result of [short, long]) {
      expect(result.executions).toBe(1);
      for (const report of result.reports.values()) {
        expect(report.errors).toEqual([]);
        expect(Object.keys(report.values)).toHaveLength(1);
        // Every caller finished soon after the one execution (in another process, for 3 of the 4)
        // returned: woken by the release message, not by a poll that happened to come by.
        lags.push(report.lastEnd - valuesOf(report)[0]!.returnedAt);
      }
    }
    const measured = {
      short: { total: total(short.commands), commands: short.commands },
      long: { total: total(long.commands), commands: long.commands },
      lags,
    };
    if (process.env.STAMPEDE_VERBOSE) process.stdout.write(`${JSON.stringify(measured)}\n`);
    // Per process a read, a lease attempt and, once woken, a re-read (the holder: a lease and its
    // completion), plus the execution counter. Polling every 100 ms would add ~20 reads per waiting
    // process for the long wait, and the cost would grow with the wait.
    // Each check names what was measured when it fails: an equal `measured` on both sides of a
    // toEqual would be hidden by Jest's diff.
    const failed = (what: string) => new Error(`${what}: ${JSON.stringify(measured)}`);
    if (measured.short.total > 40 || measured.long.total > 40) throw failed('more than 40 commands in a run');
    if (Math.abs(measured.long.total - measured.short.total) > 4) {
      throw failed('the long wait and the short one cost different numbers of commands');
    }
    if (!lags.every((lag) => lag >= 0 && lag < 250)) throw failed('a caller finished more than 250 ms after the value');
  }, 20_000);

  it(`falls back to running the method after lockWait (${IMPATIENT_LOCK_WAIT_MS} ms) instead of failing`, async () => {
    const methodMs = 1_500;
    const { reports, executions, executing, startAt, key } = await run('impatient', methodMs);
    expect(reports.size).toBe(PROCESSES);
    const holder = executing.find((message) => message.execution === 1)!;
    expect(holder).toBeDefined();
    let gaveUp = 0;
    for (const [pid, report] of reports) {
      expect(report.errors).toEqual([]);
      expect(Object.values(report.values)).toEqual([CALLS]); // one value per process (in-process single-flight)
      const [value] = valuesOf(report);
      if (pid === holder.pid) {
        expect(value).toMatchObject({ pid, execution: 1 });
      } else if (report.executions.length > 0) {
        // Gave up waiting: ran the method itself, after about lockWait.
        gaveUp++;
        expect(report.executions).toHaveLength(1);
        expect(value).toMatchObject({ pid });
        expect(report.lastEnd - startAt).toBeGreaterThanOrEqual(IMPATIENT_LOCK_WAIT_MS + methodMs - 50);
      } else {
        expect(value).toMatchObject({ pid: holder.pid, execution: 1 });
      }
      expect(report.lastEnd - startAt).toBeLessThan(IMPATIENT_LOCK_WAIT_MS + methodMs + SLACK_MS);
    }
    // Every process but the holder's waits lockWait (300 ms) for a method that takes 1500 ms: all give up.
    expect(gaveUp).toBe(PROCESSES - 1);
    expect(executions).toBe(PROCESSES);
    // The callers that gave up did not write: the cache holds the lease holder's value.
    expect(await cached('impatient', key)).toMatchObject({ pid: holder.pid, execution: 1 });
  }, 20_000);

  it(`a lock holder killed mid-load delays the others by at most lockTtl (${SHORT_LEASE_TTL_MS} ms)`, async () => {
    const methodMs = 400;
    let victim: Worker | undefined;
    const { reports, executions, executing, startAt, key } = await run('shortLease', methodMs, {
      onExecuting: (message) => {
        if (victim) return;
        victim = workers.find((worker) => worker.pid === message.pid);
        victim?.child.kill('SIGKILL');
      },
    });
    expect(victim).toBeDefined();
    expect(reports.has(victim!.pid)).toBe(false);
    expect(reports.size).toBe(PROCESSES - 1);
    expect(executions).toBe(2);
    const successor = executing.find((message) => message.execution === 2)!;
    expect(successor.pid).not.toBe(victim!.pid);
    for (const report of reports.values()) {
      expect(report.errors).toEqual([]);
      expect(Object.values(report.values)).toEqual([CALLS]);
      expect(valuesOf(report)[0]).toMatchObject({ pid: successor.pid, execution: 2 });
      // Nobody could finish before the dead holder's lease ran out; everyone finished soon after.
      expect(report.lastEnd - startAt).toBeGreaterThanOrEqual(SHORT_LEASE_TTL_MS);
      expect(report.lastEnd - startAt).toBeLessThan(SHORT_LEASE_TTL_MS + methodMs + SLACK_MS);
    }
    expect(await cached('shortLease', key)).toMatchObject({ pid: successor.pid, execution: 2 });
  }, 20_000);
});
