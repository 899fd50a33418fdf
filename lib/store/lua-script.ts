import { createHash } from 'node:crypto';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';

type ScriptArg = string | number | Buffer;

/**
 * A Lua script run by its SHA1 (`EVALSHA`), sent in full (`EVAL`) only when the server answers
 * NOSCRIPT: after a restart, a failover, or on a Cluster node that has not seen it yet. Unlike
 * ioredis's `defineCommand`, this adds nothing to the client, which may be the application's own.
 */
export class LuaScript {
  private readonly sha: string;
  private readonly source: string;

  constructor(
    readonly name: string,
    body: string,
    /** Lua shared by several scripts (helper functions), put before the body. */
    prelude = '',
  ) {
    this.source = prelude + body;
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }

  /** Runs the script on the node that owns `key` (its only key, so it is safe on a Cluster). */
  run(client: Redis | Cluster, key: string, ...args: ScriptArg[]): Promise<unknown> {
    return this.runOn(client, [key], args);
  }

  /** `run` with bulk replies as Buffers (binary data in the reply), integers as numbers. */
  async runBinary(client: Redis | Cluster, key: string, ...args: ScriptArg[]): Promise<unknown> {
    try {
      return await client.callBuffer('evalsha', this.sha, 1, key, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.callBuffer('eval', this.source, 1, key, ...args);
    }
  }

  /**
   * Adds a run on `key` to `pipeline`: by SHA, or with `whole` the script itself (EVAL), which also
   * loads it for the commands behind it. A NOSCRIPT reply to a run by SHA is the caller's to retry.
   */
  addTo(pipeline: ChainableCommander, key: string, args: readonly ScriptArg[], whole = false): void {
    if (whole) pipeline.eval(this.source, 1, key, ...args);
    else pipeline.evalsha(this.sha, 1, key, ...args);
  }

  /** Runs the script with several keys: they must share a Cluster slot (bookkeeping-keys.ts). */
  async runOn(client: Redis | Cluster, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
