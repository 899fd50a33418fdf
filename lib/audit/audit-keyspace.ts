import type { Cluster, Redis } from 'ioredis';
import { closeClient } from '../store/close-client.js';
import { resolveAuditOptions, type KeyspaceAuditOptions } from './audit-options.js';
import type { KeyspaceAuditReport, PrefixReport } from './audit-report.js';
import { addressOf, keyPrefixOf, serversOf } from './audit-nodes.js';
import { patternFor, scanServer, type MemoryUsageState } from './keyspace-scan.js';
import { PrefixTallies } from './prefix-tally.js';
import { findRedFlags } from './red-flags.js';
import { mergeFigures, readServerFigures } from './server-figures.js';

/**
 * Audits the keyspace of a cache Redis the way a weekly hygiene job would: key counts, memory, keys
 * without a TTL and the TTL spread per key prefix; the server's hit rate, evictions, fragmentation
 * and memory limits; and the red flags among them. SCAN-based (never KEYS), with PTTL and MEMORY
 * USAGE pipelined per batch; on a Cluster every primary is scanned. It only reads, but it walks the
 * whole keyspace (or what `match` selects): run it against a replica, or off-peak, on a big one.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL);
 * const report = await auditKeyspace(redis, { match: 'cache:*' });
 * for (const flag of report.redFlags) console.warn(`${flag.code}: ${flag.message} ${flag.advice}`);
 */
export async function auditKeyspace(
  client: Redis | Cluster,
  options: KeyspaceAuditOptions = {},
): Promise<KeyspaceAuditReport> {
  const settings = resolveAuditOptions(options);
  const started = performance.now();
  const servers = await serversOf(client);
  // Before the scan: PTTL and MEMORY USAGE look keys up, and Redis counts those in keyspace_hits.
  const figures = await Promise.all(servers.map((server) => readServerFigures(server)));
  const patterns = servers.map((server) => patternFor(server, settings.match));
  // Progress against DBSIZE only when every key is scanned: a pattern's matches are not known ahead.
  const total = patterns.every((pattern) => pattern === '*')
    ? (await Promise.all(servers.map((server) => server.dbsize()))).reduce((sum, size) => sum + size, 0)
    : undefined;

  const tallies = new PrefixTallies(settings);
  const memory: MemoryUsageState = { refused: undefined };
  let scanned = 0;
  settings.onProgress?.({ scanned, total });
  const connections = await Promise.all(servers.map(withoutKeyPrefix));
  try {
    await Promise.all(
      connections.map(({ server }, i) =>
        scanServer(server, { ...settings, match: patterns[i]! }, tallies, memory, (keys) => {
          scanned += keys;
          settings.onProgress?.({ scanned, total });
        }),
      ),
    );
  } finally {
    await Promise.all(connections.map((connection) => connection.release()));
  }

  const prefixes = tallies.reports(memory.refused === undefined);
  const nodes = servers.map((server, i) => ({ address: addressOf(server), figures: figures[i]! }));
  const server = mergeFigures(figures);
  return {
    finishedAt: new Date().toISOString(),
    durationMs: Math.round(performance.now() - started),
    scope: {
      nodes: nodes.map((node) => node.address),
      match: patterns[0]!,
      separator: settings.separator,
      depth: settings.depth,
      sample: settings.sample,
    },
    totals: totalsOf(prefixes),
    prefixes,
    prefixesTruncated: tallies.truncated,
    ...(memory.refused === undefined ? {} : { memoryUsageRefused: memory.refused }),
    server,
    nodes,
    redFlags: findRedFlags({ nodes, server, prefixes }, settings.thresholds),
  };
}

/**
 * A connection to `server` that sends key names as SCAN returns them: `server` itself, or a
 * connection of its own (closed by `release`) when it has a keyPrefix.
 */
async function withoutKeyPrefix(server: Redis): Promise<{ server: Redis; release: () => Promise<void> }> {
  if (!keyPrefixOf(server)) return { server, release: async () => undefined };
  const plain = server.duplicate({ keyPrefix: '', lazyConnect: true });
  await plain.connect();
  return { server: plain, release: () => closeClient(plain) };
}

function totalsOf(prefixes: readonly PrefixReport[]): KeyspaceAuditReport['totals'] {
  const known = prefixes.every((prefix) => prefix.bytes !== null);
  return {
    keys: prefixes.reduce((sum, prefix) => sum + prefix.keys, 0),
    withoutTtl: prefixes.reduce((sum, prefix) => sum + prefix.withoutTtl, 0),
    bytes: known ? prefixes.reduce((sum, prefix) => sum + prefix.bytes!, 0) : null,
    bytesEstimated: known && prefixes.some((prefix) => prefix.bytesEstimated),
    prefixes: prefixes.length,
  };
}
