import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

type ScriptArg = string | number | Buffer;

/**
 * A Lua script run by its SHA1 (`EVALSHA`), sent in full (`EVAL`) only when the server answers
 * NOSCRIPT: after a restart, a failover, or on a Cluster node that has not seen it yet. Unlike
 * ioredis's `defineCommand`, this adds nothing to the client, which may be the application's own.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(
    readonly name: string,
    private readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script on the node that owns `key` (its only key, so it is safe on a Cluster). */
  async run(client: Redis | Cluster, key: string, ...args: ScriptArg[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, 1, key, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.source, 1, key, ...args);
    }
  }
}
