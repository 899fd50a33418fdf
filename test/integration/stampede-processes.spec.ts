// Cross-process stampede protection with real processes: 4 node children (test/support/stampede-worker.ts,
// compiled by tsc into .tmp/) share one Redis and namespace, and each fires 250 concurrent calls of a
// decorated method on the same cold key. The Redis is this file's own (a redis-server, or a 3-primary
// cluster in the cluster project), so its INFO commandstats count only what the workers send.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
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

const ROOT = process.cwd();
const WORKER_JS = join(ROOT, '.tmp/stampede-worker/test/support/stampede-worker.js');
const PROCESSES = 4;
const CALLS = 250;
/** Room for a noisy 2-core machine in every time bound. */
const SLACK_MS = 1_500;

interface Worker {
  child: ChildProcess;
  pid: number;
  alive: boolean;
  stderr: string;
  messages: Array<(message: WorkerMessage) => void>;
  exited: Promise<void>;
}

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

const total = (commands: Record<string, number>) => Object.values(commands).reduce((sum, n) => sum + n, 0);

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

  /** Where the workers' cache goes (see stampede-worker.ts). */
  function workerRedisEnv(): Record<string, string> {
    const { connection } = server;
    return typeof connection === 'string'
      ? { STAMPEDE_REDIS_URL: connection }
      : { STAMPEDE_REDIS_CLUSTER_NODES: JSON.stringify(connection.cluster.nodes) };
  }

  function spawnWorker(): Promise<Worker> {
    const child = spawn(process.execPath, [WORKER_JS], {
      env: { ...process.env, ...workerRedisEnv(), STAMPEDE_NAMESPACE: namespace },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const worker: Worker = {
      child,
      pid: child.pid ?? -1,
      alive: true,
      stderr: '',
      messages: [],
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
    };
    void worker.exited.then(() => (worker.alive = false));
    child.stdout?.on('data', () => undefined);
    child.stderr?.on('data', (chunk: Buffer) => (worker.stderr += chunk.toString()));
    child.on('message', (message: WorkerMessage) => {
      for (const listener of [...worker.messages]) listener(message);
    });
    workers.push(worker);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker ${worker.pid} not ready after 20 s\n${worker.stderr}`)),
        20_000,
      );
      const onMessage = (message: WorkerMessage) => {
        if (message.type === 'ready' || message.type === 'fatal') {
          clearTimeout(timer);
          worker.messages.splice(worker.messages.indexOf(onMessage), 1);
          if (message.type === 'ready') resolve(worker);
          else reject(new Error(`worker ${worker.pid} failed to start: ${message.error}\n${worker.stderr}`));
        }
      };
      worker.messages.push(onMessage);
      void worker.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`worker ${worker.pid} exited before it was ready\n${worker.stderr}`));
      });
    });
  }

  beforeAll(async () => {
    // Compile the worker (and the lib/ it imports) for plain node; incremental, so reruns are quick.
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    await promisify(execFile)(process.execPath, [tsc, '-p', 'test/support/tsconfig.stampede-worker.json'], {
      cwd: ROOT,
    }).catch((error: { stdout?: string; message: string }) => {
      throw new Error(`tsc of the stampede worker failed: ${error.stdout ?? error.message}`);
    });
    if (!existsSync(WORKER_JS)) throw new Error(`tsc did not write ${WORKER_JS}`);
    server = await startOwnRedis();
    admin = server.client();
    await Promise.all(Array.from({ length: PROCESSES }, () => spawnWorker()));
  }, 60_000);

  afterAll(async () => {
    for (const worker of workers) {
      if (!worker.alive) continue;
      const message: ParentMessage = { type: 'exit' };
      if (worker.child.connected) worker.child.send(message);
      const escalate = setTimeout(() => worker.child.kill('SIGKILL'), 3_000);
      await worker.exited;
      clearTimeout(escalate);
    }
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
    const listeners: Array<[Worker, (message: WorkerMessage) => void]> = [];
    try {
      await Promise.all(
        live.map(
          (worker) =>
            new Promise<void>((resolve, reject) => {
              const timer = setTimeout(
                () => reject(new Error(`worker ${worker.pid} did not report within 15 s\n${worker.stderr}`)),
                15_000,
              );
              const listener = (message: WorkerMessage) => {
                if (message.type === 'executing' && message.key === key) {
                  result.executing.push(message);
                  onExecuting?.(message);
                } else if (message.type === 'done' && message.key === key) {
                  clearTimeout(timer);
                  result.reports.set(worker.pid, message.report);
                  resolve();
                } else if (message.type === 'fatal') {
                  clearTimeout(timer);
                  reject(new Error(`worker ${worker.pid}: ${message.error}`));
                }
              };
              listeners.push([worker, listener]);
              worker.messages.push(listener);
              // A worker killed by the test counts as done; any other exit is a failure.
              void worker.exited.then(() => {
                clearTimeout(timer);
                if (worker.child.signalCode === 'SIGKILL') resolve();
                else reject(new Error(`worker ${worker.pid} exited during the run\n${worker.stderr}`));
              });
              const message: ParentMessage = { type: 'run', method, key, methodMs, calls: CALLS, startAt };
              worker.child.send(message);
            }),
        ),
      );
    } finally {
      for (const [worker, listener] of listeners) worker.messages.splice(worker.messages.indexOf(listener), 1);
    }
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
    expect([...reports.values()].reduce((sum, report) => sum + report.localExecutions, 0)).toBe(1);
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
    expect({ measured, fewCommands: measured.short.total <= 40 && measured.long.total <= 40 }).toEqual({
      measured,
      fewCommands: true,
    });
    expect({ measured, sameCost: Math.abs(measured.long.total - measured.short.total) <= 4 }).toEqual({
      measured,
      sameCost: true,
    });
    expect({ measured, prompt: lags.every((lag) => lag >= 0 && lag < 250) }).toEqual({ measured, prompt: true });
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
      } else if (report.localExecutions > 0) {
        // Gave up waiting: ran the method itself, after about lockWait.
        gaveUp++;
        expect(report.localExecutions).toBe(1);
        expect(value).toMatchObject({ pid });
        expect(report.lastEnd - startAt).toBeGreaterThanOrEqual(IMPATIENT_LOCK_WAIT_MS + methodMs - 50);
      } else {
        expect(value).toMatchObject({ pid: holder.pid, execution: 1 });
      }
      expect(report.lastEnd - startAt).toBeLessThan(IMPATIENT_LOCK_WAIT_MS + methodMs + SLACK_MS);
    }
    expect(gaveUp).toBeGreaterThan(0);
    expect(executions).toBe(1 + gaveUp);
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
