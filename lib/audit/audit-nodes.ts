import type { Cluster, Redis } from 'ioredis';
import { isCluster } from '../store/guarded-commands.js';

/**
 * The servers that hold the keys: the client itself, or each primary of a Cluster (SCAN, INFO and
 * DBSIZE answer for one node only). A Cluster still connecting is waited for: it learns its nodes then.
 */
export async function serversOf(client: Redis | Cluster): Promise<Redis[]> {
  if (!isCluster(client)) return [client];
  if (client.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      const ready = () => {
        client.off('end', ended);
        resolve();
      };
      const ended = () => {
        client.off('ready', ready);
        reject(new Error('the Redis Cluster connection ended before it was ready'));
      };
      client.once('ready', ready);
      client.once('end', ended);
    });
  }
  return client.nodes('master');
}

/** `host:port` of a server, for reports and messages. */
export function addressOf(server: Redis): string {
  const { host = '127.0.0.1', port = 6379, path } = server.options;
  return path ?? `${host}:${port}`;
}

/** The `keyPrefix` ioredis puts before every key this server's client sends (not SCAN's pattern). */
export function keyPrefixOf(server: Redis): string {
  return server.options.keyPrefix ?? '';
}

/** `literal` as a SCAN MATCH glob that matches it and nothing else. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}
