// The parent's side of the specs that run the library in child processes of their own (real
// processes, not two apps in one jest worker): compile a worker, spawn it, wait for its messages,
// stop it. The child's side is worker-process.ts, which speaks the same `ready` / `fatal` / `exit`
// messages; each spec's own messages are its protocol's (stampede-protocol.ts, l1-protocol.ts, ...).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
// Nothing of jest here: bench/stampede.bench.ts spawns its workers with this file too.
import type { WorkerRedis } from './worker-process.js';

const ROOT = process.cwd();
/** How long a worker may take to boot (Nest, its Redis connections) on a loaded 2-core machine. */
const READY_TIMEOUT_MS = 20_000;
/** How long a worker asked to exit may take before it is killed. */
const EXIT_GRACE_MS = 3_000;

interface Tagged {
  type: string;
}

/**
 * Compiles a worker (and the lib/ it imports) with its own tsconfig for plain node: jest's ESM
 * transform exists only in the jest worker. Incremental, so reruns are quick.
 */
export async function compileWorker(tsconfigPath: string, outJs: string): Promise<void> {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', tsconfigPath], { cwd: ROOT }).catch(
    (error: { stdout?: string; message: string }) => {
      throw new Error(`tsc -p ${tsconfigPath} failed: ${error.stdout ?? error.message}`);
    },
  );
  if (!existsSync(outJs)) throw new Error(`tsc did not write ${outJs}`);
}

/**
 * The environment that tells a worker where the test Redis is (read back by redisFromEnv in
 * worker-process.ts): `<prefix>_REDIS_URL`, or a cluster's nodes as JSON in `<prefix>_REDIS_CLUSTER_NODES`.
 */
export function redisEnv(prefix: string, connection: WorkerRedis): Record<string, string> {
  return typeof connection === 'string'
    ? { [`${prefix}_REDIS_URL`]: connection }
    : { [`${prefix}_REDIS_CLUSTER_NODES`]: JSON.stringify(connection.cluster.nodes) };
}

/** The parent's handle on a worker process speaking `Message` (to the parent) and `Command` (to it) over IPC. */
export class WorkerHandle<Message extends Tagged, Command extends Tagged> {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the child exits, however it does. */
  readonly exited: Promise<void>;
  /** Resolves once the worker said `ready`; rejects on its `fatal`, its exit, or after 20 s. */
  readonly ready: Promise<void>;
  private live = true;
  private output = '';
  private readonly listeners = new Set<(message: Message) => void>();

  constructor(
    js: string,
    env: Record<string, string>,
    private readonly name?: string,
  ) {
    this.child = spawn(process.execPath, [js], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.pid = this.child.pid ?? -1;
    this.exited = new Promise((resolve) =>
      this.child.once('exit', () => {
        this.live = false;
        resolve();
      }),
    );
    // Drained, so that a chatty worker never blocks on a full pipe.
    this.child.stdout?.on('data', () => undefined);
    this.child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.on('message', (message: Message) => {
      for (const listener of [...this.listeners]) listener(message);
    });
    this.ready = this.next((message) => message.type === 'ready', READY_TIMEOUT_MS, 'ready').then(() => undefined);
    // Awaited by whoever spawned it; a spec that fails before that must not also see an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  /** False from the child's exit on. */
  get alive(): boolean {
    return this.live;
  }

  /** What the child wrote to stderr so far: its crash, if it crashed. */
  get stderr(): string {
    return this.output;
  }

  /** Sends unless the channel is closed (the worker leaving): `next` reports a worker that is gone. */
  send(command: Command): void {
    if (this.child.connected) this.child.send(command);
  }

  /**
   * The next message `accept` takes (it may also look at the others as they pass). Listens from the
   * call on, so call it before sending what triggers the message. Rejects after `timeoutMs`, on a
   * `fatal` message, or when the worker exits first; `what` names the wait in the error.
   */
  next<M extends Message>(accept: (message: Message) => message is M, timeoutMs: number, what: string): Promise<M>;
  next(accept: (message: Message) => boolean, timeoutMs: number, what: string): Promise<Message>;
  next(accept: (message: Message) => boolean, timeoutMs: number, what: string): Promise<Message> {
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      const fail = (why: string, detail = '') => {
        settle();
        const label = this.name ? `${this.name} (${this.pid})` : String(this.pid);
        const text = `worker ${label} ${why} waiting for ${what}${detail}`;
        reject(new Error(this.output ? `${text}\n${this.output}` : text));
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      const listener = (message: Message) => {
        if (accept(message)) {
          settle();
          resolve(message);
        } else if (message.type === 'fatal') {
          fail('failed', `: ${(message as Tagged & { error?: unknown }).error}`);
        }
      };
      this.listeners.add(listener);
      void this.exited.then(() => {
        if (this.listeners.has(listener)) fail('exited');
      });
    });
  }
}

/** Spawns `js` with node (the parent's environment plus `env`); `name` labels it in errors. */
export function spawnWorker<Message extends Tagged, Command extends Tagged>(
  js: string,
  env: Record<string, string>,
  options: { name?: string } = {},
): WorkerHandle<Message, Command> {
  return new WorkerHandle<Message, Command>(js, env, options.name);
}

/**
 * For afterAll, whatever happened: asks each live worker to leave (`exit`, which worker-process.ts
 * answers by closing its app and its connections), and kills it if it has not within 3 s.
 */
export async function stopWorkers(
  workers: Iterable<{ alive: boolean; child: ChildProcess; exited: Promise<void> }>,
): Promise<void> {
  for (const worker of workers) {
    if (!worker.alive) continue;
    if (worker.child.connected) worker.child.send({ type: 'exit' });
    const escalate = setTimeout(() => worker.child.kill('SIGKILL'), EXIT_GRACE_MS);
    await worker.exited;
    clearTimeout(escalate);
  }
}
