import type { Redis } from 'ioredis';
import type { ServerFigures } from './audit-report.js';

/** The `field:value` lines of an INFO reply (section headers and blank lines left out). */
export function parseInfo(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return fields;
}

/** The figures of one server from its INFO fields and, when it answered, CONFIG GET. */
export function figuresFromInfo(
  info: ReadonlyMap<string, string>,
  config?: { maxmemoryBytes: number; maxmemoryPolicy: string },
): ServerFigures {
  const number = (field: string): number | null => {
    const value = info.get(field);
    if (value === undefined || value === '') return null;
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : null;
  };
  const keyspaceHits = number('keyspace_hits');
  const keyspaceMisses = number('keyspace_misses');
  const infoMaxmemory = number('maxmemory');
  const infoPolicy = info.get('maxmemory_policy') ?? null;
  const fromInfo = infoMaxmemory !== null || infoPolicy !== null;
  return {
    keyspaceHits,
    keyspaceMisses,
    hitRate: hitRate(keyspaceHits, keyspaceMisses),
    evictedKeys: number('evicted_keys'),
    expiredKeys: number('expired_keys'),
    usedMemoryBytes: number('used_memory'),
    usedMemoryHuman: info.get('used_memory_human') ?? null,
    memFragmentationRatio: number('mem_fragmentation_ratio'),
    maxmemoryBytes: config ? config.maxmemoryBytes : infoMaxmemory,
    maxmemoryPolicy: config ? config.maxmemoryPolicy : infoPolicy,
    configSource: config ? 'config' : fromInfo ? 'info' : 'unknown',
    clusterEnabled: info.get('cluster_enabled') === '1',
  };
}

/**
 * Reads one server's figures: INFO (every default section) and CONFIG GET of maxmemory and its
 * policy. CONFIG is often refused (an ACL without +config, managed Redis that renames it): then
 * INFO memory's own maxmemory fields answer, and without those the values are unknown. Never throws:
 * a refused INFO leaves its figures unknown too.
 */
export async function readServerFigures(server: Redis): Promise<ServerFigures> {
  const [info, config] = await Promise.all([
    server.info().then(parseInfo, () => new Map<string, string>()),
    readMaxmemoryConfig(server),
  ]);
  return figuresFromInfo(info, config);
}

/** CONFIG GET maxmemory and maxmemory-policy; undefined when refused or not understood. */
async function readMaxmemoryConfig(
  server: Redis,
): Promise<{ maxmemoryBytes: number; maxmemoryPolicy: string } | undefined> {
  try {
    // One parameter per CONFIG GET: Redis before 7.0 takes only one.
    const [maxmemory, policy] = await Promise.all([
      server.config('GET', 'maxmemory').then(configValue),
      server.config('GET', 'maxmemory-policy').then(configValue),
    ]);
    const maxmemoryBytes = Number(maxmemory);
    if (maxmemory === undefined || !Number.isFinite(maxmemoryBytes) || !policy) return undefined;
    return { maxmemoryBytes, maxmemoryPolicy: policy };
  } catch {
    return undefined;
  }
}

/** The value in a CONFIG GET reply of one parameter: `[name, value]` (ioredis flattens RESP3's map so too). */
function configValue(reply: unknown): string | undefined {
  return Array.isArray(reply) && reply.length >= 2 ? String(reply[1]) : undefined;
}

/**
 * The figures of several servers as one: counters and memory summed, the worst fragmentation,
 * config values when every server agrees (maxmemory: 0 if any server has no limit, since that one
 * can grow without bound; otherwise the sum). One server's figures are returned as they are.
 */
export function mergeFigures(all: readonly ServerFigures[]): ServerFigures {
  if (all.length === 1) return all[0]!;
  const sum = (pick: (figures: ServerFigures) => number | null): number | null => {
    const values = all.map(pick);
    return values.some((value) => value === null) ? null : values.reduce<number>((a, b) => a + b!, 0);
  };
  const keyspaceHits = sum((f) => f.keyspaceHits);
  const keyspaceMisses = sum((f) => f.keyspaceMisses);
  const usedMemoryBytes = sum((f) => f.usedMemoryBytes);
  const ratios = all.map((f) => f.memFragmentationRatio).filter((ratio): ratio is number => ratio !== null);
  const limits = all.map((f) => f.maxmemoryBytes);
  const policies = new Set(all.map((f) => f.maxmemoryPolicy));
  const sources = new Set(all.map((f) => f.configSource));
  return {
    keyspaceHits,
    keyspaceMisses,
    hitRate: hitRate(keyspaceHits, keyspaceMisses),
    evictedKeys: sum((f) => f.evictedKeys),
    expiredKeys: sum((f) => f.expiredKeys),
    usedMemoryBytes,
    usedMemoryHuman: usedMemoryBytes === null ? null : humanBytes(usedMemoryBytes),
    memFragmentationRatio: ratios.length === all.length ? Math.max(...ratios) : null,
    maxmemoryBytes: limits.includes(0) ? 0 : limits.includes(null) ? null : limits.reduce<number>((a, b) => a + b!, 0),
    maxmemoryPolicy: policies.size === 1 ? all[0]!.maxmemoryPolicy : null,
    configSource: sources.size === 1 ? all[0]!.configSource : 'unknown',
    clusterEnabled: all.some((f) => f.clusterEnabled),
  };
}

function hitRate(hits: number | null, misses: number | null): number | null {
  if (hits === null || misses === null || hits + misses === 0) return null;
  return hits / (hits + misses);
}

/** Bytes the way Redis's `*_human` fields write them (`1.50M`). */
function humanBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes}B` : `${value.toFixed(2)}${units[unit]}`;
}
