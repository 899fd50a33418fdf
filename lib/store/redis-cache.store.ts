import type { Cluster, Redis } from 'ioredis';
import { CacheUnavailableError } from '../errors.js';
import type { ConnectionHealth } from './connection-health.js';

/** How many keys one SCAN step asks for and one UNLINK removes. */
const SCAN_BATCH = 500;

/**
 * The Redis side of the cache: a handful of commands, each bounded by `commandTimeout` and refused
 * at once while the connection is not ready, so no caller ever queues behind a dead connection.
 * Every failure surfaces as `CacheUnavailableError` for the caller above to fail open on.
 * Knows nothing of Nest, keys' meaning or encoding.
 */
export class RedisCacheStore {
  private probing = false;

  constructor(
    readonly client: Redis | Cluster,
    private readonly commandTimeoutMs: number,
    private readonly health: ConnectionHealth,
  ) {}

  /** The stored bytes, or `null` when the key is absent. */
  get(key: string): Promise<Buffer | null> {
    return this.run('GET', () => this.client.getBuffer(key));
  }

  /** `SET key value PX ttl` in one command: there is never a write without a TTL. */
  async set(key: string, payload: Buffer, ttlMs: number): Promise<void> {
    await this.run('SET', () => this.client.set(key, payload, 'PX', Math.max(1, Math.round(ttlMs))));
  }

  /** UNLINK (non-blocking delete) of the given keys, pipelined one command per key for Cluster safety. */
  async unlink(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    if (keys.length === 1) return this.run('UNLINK', () => this.client.unlink(keys[0]));
    return this.run('UNLINK', async () => {
      const pipeline = this.client.pipeline();
      for (const key of keys) pipeline.unlink(key);
      return countDeleted(await pipeline.exec());
    });
  }

  /**
   * Deletes every key matching a glob `pattern` (given without the client's `keyPrefix`) by SCAN +
   * pipelined UNLINK in batches — never KEYS, which blocks Redis. On a Cluster every primary is
   * scanned. Returns the number of keys removed.
   */
  async scanAndUnlink(pattern: string): Promise<number> {
    const nodes = isCluster(this.client) ? this.client.nodes('master') : [this.client];
    const prefix = this.keyPrefix();
    let removed = 0;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await this.run('SCAN', () =>
          node.scan(cursor, 'MATCH', `${escapeGlob(prefix)}${pattern}`, 'COUNT', SCAN_BATCH),
        );
        cursor = next;
        // SCAN returns full key names; UNLINK adds the client's keyPrefix again, so strip it.
        const keys = prefix ? found.map((key) => key.slice(prefix.length)) : found;
        removed += await this.unlink(keys);
      } while (cursor !== '0');
    }
    return removed;
  }

  private keyPrefix(): string {
    const options = isCluster(this.client) ? this.client.options.redisOptions : this.client.options;
    return options?.keyPrefix ?? '';
  }

  /**
   * Runs one command with the fail-fast rules: refused while the connection is not ready, abandoned
   * after `commandTimeout`. Reports success and failure to the health tracker (which logs once per outage).
   */
  private async run<T>(command: string, execute: () => Promise<T>): Promise<T> {
    if (this.client.status !== 'ready') {
      const error = new CacheUnavailableError(`Redis connection is ${this.client.status}; ${command} skipped`);
      this.health.failed(error);
      throw error;
    }
    // During an outage one command at a time probes Redis; the others fail at once instead of each
    // waiting out commandTimeout against a server that is paused or overloaded.
    const probe = this.health.isDown;
    if (probe) {
      if (this.probing) throw new CacheUnavailableError(`Redis is unavailable; ${command} skipped while a probe runs`);
      this.probing = true;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        execute(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new CacheUnavailableError(`${command} exceeded commandTimeout (${this.commandTimeoutMs} ms)`)),
            this.commandTimeoutMs,
          );
        }),
      ]);
      this.health.succeeded();
      return result;
    } catch (err) {
      const error =
        err instanceof CacheUnavailableError ? err : new CacheUnavailableError(`${command} failed`, { cause: err });
      this.health.failed(error);
      throw error;
    } finally {
      clearTimeout(timer);
      if (probe) this.probing = false;
    }
  }
}

export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as Cluster).isCluster === true;
}

function countDeleted(results: [Error | null, unknown][] | null): number {
  let deleted = 0;
  for (const [error, value] of results ?? []) {
    if (error) throw error;
    deleted += Number(value) || 0;
  }
  return deleted;
}

/** Escapes glob metacharacters so a literal prefix matches only itself in SCAN MATCH. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}
