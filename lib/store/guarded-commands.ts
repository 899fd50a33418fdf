import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { CacheUnavailableError } from '../errors.js';
import { ANYWHERE, SOME_NODE, type ConnectionHealth } from './connection-health.js';

/**
 * The fail-fast rules every cache command runs under: refused at once while the connection is not
 * ready, abandoned after `commandTimeout`, one probe at a time to a server (or Cluster node) in an
 * outage, and every outcome reported to the health tracker (which logs once per outage). So no
 * caller ever queues behind a dead, paused or overloaded Redis.
 */
export class GuardedCommands {
  /** The nodes (ANYWHERE on one server) a probe is running on during their outage. */
  private readonly probing = new Set<string>();
  /** The Cluster nodes serving a slot when last read (see servingNodes), and when that was. */
  private serving: ReadonlySet<string> | undefined;
  private servingReadAt = 0;
  /**
   * Commands in flight, oldest first, as a doubly linked list through the entries (a reply removes
   * its entry in O(1), in whatever order replies come, as on a Cluster). `commandTimeout` is the
   * same for every command, so the oldest also has the earliest deadline: one timer, armed for the
   * oldest deadline, is enough for all of them.
   */
  private oldest: PendingCommand | undefined;
  private newest: PendingCommand | undefined;
  /** Armed while commands may be pending; unref'd, so it never keeps the process alive. */
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly commandTimeoutMs: number,
    private readonly health: ConnectionHealth,
  ) {}

  /** ioredis's `keyPrefix`; a Cluster takes it from its own options or from `redisOptions`. */
  get keyPrefix(): string {
    const client = this.client;
    if (isCluster(client)) return client.options.keyPrefix ?? client.options.redisOptions?.keyPrefix ?? '';
    return client.options.keyPrefix ?? '';
  }

  /**
   * Runs one command with the fail-fast rules: refused while the connection is not ready, abandoned
   * after `commandTimeout`. Reports success and failure to the health tracker (which logs once per outage).
   *
   * Not `async`, and no `Promise.race` with a timer per command: the caller's promise is settled
   * straight from the command's reply, and one timer (see {@link sweep}) abandons every command whose
   * deadline has passed. Measured: bench/README.md, "The store's fail-fast timer".
   */
  run<T>(command: string, execute: () => Promise<T>, node = ANYWHERE): Promise<T> {
    if (this.client.status !== 'ready') {
      const error = new CacheUnavailableError(`Redis connection is ${this.client.status}; ${command} skipped`);
      this.health.failed(error);
      return Promise.reject(error);
    }
    // During an outage one command at a time probes Redis (on a Cluster: the node that is down); the
    // others fail at once instead of each waiting out commandTimeout against a server that is paused
    // or overloaded.
    const probe = this.health.isDownAt(node) ? node : undefined;
    if (probe !== undefined) {
      if (this.probing.has(probe)) {
        return Promise.reject(new CacheUnavailableError(`Redis is unavailable; ${command} skipped while a probe runs`));
      }
      this.probing.add(probe);
    }
    let reply: Promise<T>;
    try {
      reply = execute();
    } catch (err) {
      reply = Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      const pending = this.track(command, node, probe, reject, reply);
      reply.then(
        (value) => {
          if (!this.settle(pending)) return; // abandoned: the caller has moved on
          this.health.succeeded(node);
          this.retainServingNodes();
          resolve(value);
        },
        (err: unknown) => {
          if (!this.settle(pending)) return;
          const error =
            err instanceof CacheUnavailableError ? err : new CacheUnavailableError(`${command} failed`, { cause: err });
          // An error reply (WRONGTYPE on a key someone else wrote, say) is about that key, not the
          // connection: Redis answered, so it is no outage and other keys keep being served.
          if (isReplyError(err)) this.health.succeeded(node);
          else if (this.stillServes(node)) this.nodeFailed(error, node);
          reject(error);
        },
      );
    });
  }

  /**
   * The Cluster node (`host:port`) serving `key`'s slot, as the client knows it now; ANYWHERE on
   * one server, or when the client does not know the slot's node yet.
   */
  nodeOf(key: string): string {
    const client = this.client;
    if (!isCluster(client)) return ANYWHERE;
    return client.slots[calculateSlot(this.keyPrefix + key)]?.[0] ?? ANYWHERE;
  }

  /**
   * On a Cluster during an outage: nodes that no longer serve a slot (their replica took over, and
   * the client knows it) are no longer down.
   */
  private retainServingNodes(): void {
    if (!this.health.isDown || !isCluster(this.client)) return;
    this.health.retainNodes(this.servingNodes());
  }

  /** Reports a failure on `node` (health per Cluster node: see connection-health.ts). */
  private nodeFailed(error: Error, node: string): void {
    this.health.failed(error, node);
  }

  /**
   * Whether a failure on `node` says something about Redis now: not when it is a Cluster node that
   * serves no slot any more (a command sent to a dead primary just before the client learnt of its
   * replica's promotion, timing out after it).
   */
  private stillServes(node: string): boolean {
    // Read fresh (failures are rare): a copy up to 100 ms old could restart an outage just ended.
    if (node === SOME_NODE) return false;
    return node === ANYWHERE || !isCluster(this.client) || this.servingNodes(true).has(node);
  }

  /** The Cluster nodes that serve a slot, from the client's slot table: read at most every 100 ms. */
  private servingNodes(fresh = false): ReadonlySet<string> {
    const now = performance.now();
    if (fresh || !this.serving || now >= this.servingReadAt + 100) {
      const serving = new Set<string>();
      for (const nodes of (this.client as Cluster).slots) if (nodes?.[0]) serving.add(nodes[0]);
      this.serving = serving;
      this.servingReadAt = now;
    }
    return this.serving;
  }

  private track(
    command: string,
    node: string,
    probe: string | undefined,
    reject: (error: Error) => void,
    reply: Promise<unknown>,
  ): PendingCommand {
    const pending: PendingCommand = {
      command,
      node,
      probe,
      reject,
      reply,
      deadline: performance.now() + this.commandTimeoutMs,
      older: this.newest,
      newer: undefined,
    };
    if (this.newest) this.newest.newer = pending;
    else this.oldest = pending;
    this.newest = pending;
    // Armed once, not per command: while commands keep coming it fires about once per
    // commandTimeout, finds the commands that were that old already answered, and re-arms.
    if (!this.sweepTimer) this.armSweep(this.commandTimeoutMs);
    return pending;
  }

  /** Takes a command out of the pending list; false when it was already abandoned (or settled). */
  private settle(pending: PendingCommand): boolean {
    if (pending.reject === undefined) return false;
    pending.reject = undefined;
    if (pending.probe !== undefined) this.probing.delete(pending.probe);
    const { older, newer } = pending;
    if (older) older.newer = newer;
    else this.oldest = newer;
    if (newer) newer.older = older;
    else this.newest = older;
    pending.older = pending.newer = undefined;
    return true;
  }

  private armSweep(ms: number): void {
    this.sweepTimer = setTimeout(this.sweep, ms);
    this.sweepTimer.unref();
  }

  /** Abandons every command past its deadline, then re-arms for the oldest one left (if any). */
  private readonly sweep = (): void => {
    this.sweepTimer = undefined;
    const now = performance.now();
    while (this.oldest && this.oldest.deadline <= now) {
      const pending = this.oldest;
      const reject = pending.reject!;
      this.settle(pending);
      const error = new CommandTimeoutError(
        `${pending.command} exceeded commandTimeout (${this.commandTimeoutMs} ms)`,
        pending.reply.then(
          () => undefined,
          () => undefined,
        ),
      );
      if (this.stillServes(pending.node)) this.nodeFailed(error, pending.node);
      reject(error);
    }
    // A timer may fire a little before performance.now() reaches the deadline: never re-arm for 0.
    if (this.oldest) this.armSweep(Math.max(1, Math.ceil(this.oldest.deadline - now)));
  };
}

/** One command awaiting its reply (see `GuardedCommands.track`). */
interface PendingCommand {
  readonly command: string;
  /** Where it went: a Cluster node, or ANYWHERE. */
  readonly node: string;
  /** The node it probes, if it is the one command let through to it during its outage: its end lets the next one probe. */
  readonly probe: string | undefined;
  /** Rejects the caller's promise; cleared once the command is settled or abandoned. */
  reject: ((error: Error) => void) | undefined;
  /** The client's own promise of the reply, which still settles after the command was abandoned. */
  readonly reply: Promise<unknown>;
  /** `performance.now()` after which the command is abandoned. */
  readonly deadline: number;
  older: PendingCommand | undefined;
  newer: PendingCommand | undefined;
}

/**
 * A command abandoned after `commandTimeout`: unlike one refused or skipped, it was sent and may
 * still run on Redis (a lease it took, a write it made), so what it did may need undoing later.
 */
export class CommandTimeoutError extends CacheUnavailableError {
  constructor(
    message: string,
    /**
     * Settles when the client is done with the command: it answered, or failed for good. Until then
     * it may still run, even after later commands (a Cluster client retries a command whose node
     * went away; a client resends what was in flight when it reconnects), so undoing what it did
     * waits for this.
     */
    readonly settled: Promise<void> = Promise.resolve(),
  ) {
    super(message);
  }
}

export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/**
 * An error reply of Redis (WRONGTYPE, NOSCRIPT...), as opposed to a failed connection or a timeout.
 * By name, so a reply error from another copy of ioredis is recognised too.
 */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}
