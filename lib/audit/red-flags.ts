import type { RedFlagThresholds } from './audit-options.js';
import type { NodeReport, PrefixReport, RedFlag, ServerFigures } from './audit-report.js';

/** What the rules look at. */
export interface RedFlagInput {
  readonly nodes: readonly NodeReport[];
  /** The nodes' figures as one (server-figures.ts `mergeFigures`). */
  readonly server: ServerFigures;
  readonly prefixes: readonly PrefixReport[];
}

/** How many prefixes a message names before "and N more". */
const NAMED_PREFIXES = 5;

/**
 * The findings that need action, in the order they are worth fixing: memory bounds first, then
 * keys that never leave, then efficiency. A figure that is unknown (refused, not reported) raises
 * nothing: the report shows it as unknown instead.
 */
export function findRedFlags(input: RedFlagInput, thresholds: RedFlagThresholds): RedFlag[] {
  return [
    noMaxmemory(input.nodes),
    noEviction(input.nodes),
    keysWithoutTtl(input.prefixes),
    volatilePolicyWithKeysWithoutTtl(input.nodes, input.prefixes),
    highFragmentation(input.nodes, thresholds),
    lowHitRate(input.server, thresholds),
  ].filter((flag): flag is RedFlag => flag !== undefined);
}

function noMaxmemory(nodes: readonly NodeReport[]): RedFlag | undefined {
  const unbounded = addresses(nodes.filter((node) => node.figures.maxmemoryBytes === 0));
  if (unbounded.length === 0) return undefined;
  return {
    code: 'no-maxmemory',
    message: `No maxmemory set${on(unbounded, nodes)}: Redis grows until the machine runs out of memory and the OS kills it.`,
    advice:
      'Set maxmemory to about 75% of the RAM Redis may use (CONFIG SET maxmemory 3gb, and in redis.conf), ' +
      'with an allkeys-lru or allkeys-lfu maxmemory-policy so the coldest entries make room.',
    nodes: unbounded,
  };
}

function noEviction(nodes: readonly NodeReport[]): RedFlag | undefined {
  const refusing = addresses(nodes.filter((node) => node.figures.maxmemoryPolicy === 'noeviction'));
  if (refusing.length === 0) return undefined;
  return {
    code: 'noeviction',
    message:
      `maxmemory-policy is noeviction${on(refusing, nodes)}: once maxmemory is reached every write fails ` +
      '(OOM command not allowed) instead of old cache entries making room.',
    advice: 'For a cache use allkeys-lru (or allkeys-lfu): CONFIG SET maxmemory-policy allkeys-lru, and in redis.conf.',
    nodes: refusing,
  };
}

function keysWithoutTtl(prefixes: readonly PrefixReport[]): RedFlag | undefined {
  const holding = prefixesWithoutTtl(prefixes);
  const count = holding.reduce((total, prefix) => total + prefix.withoutTtl, 0);
  if (count === 0) return undefined;
  return {
    code: 'keys-without-ttl',
    message: `${count.toLocaleString('en-US')} key(s) have no TTL and live until deleted: ${named(holding)}.`,
    advice:
      'Write cache entries with a TTL (SET key value EX seconds); give the keys already there one (EXPIRE), ' +
      'or delete them if nothing reads them any more. Keys that must stay belong in another Redis or database.',
    prefixes: holding.map((prefix) => prefix.prefix),
  };
}

function volatilePolicyWithKeysWithoutTtl(
  nodes: readonly NodeReport[],
  prefixes: readonly PrefixReport[],
): RedFlag | undefined {
  const holding = prefixesWithoutTtl(prefixes);
  const volatile = nodes.filter((node) => node.figures.maxmemoryPolicy?.startsWith('volatile-') === true);
  if (holding.length === 0 || volatile.length === 0) return undefined;
  const policies = [...new Set(volatile.map((node) => node.figures.maxmemoryPolicy))].join(', ');
  return {
    code: 'volatile-policy-with-keys-without-ttl',
    message:
      `maxmemory-policy is ${policies}${on(addresses(volatile), nodes)}, which evicts only keys with a TTL, ` +
      `and keys without one exist (${named(holding)}): they can never be evicted, and when they fill ` +
      'maxmemory writes fail.',
    advice: 'Give those keys a TTL, or use allkeys-lru / allkeys-lfu so any key can make room.',
    nodes: addresses(volatile),
    prefixes: holding.map((prefix) => prefix.prefix),
  };
}

function highFragmentation(nodes: readonly NodeReport[], thresholds: RedFlagThresholds): RedFlag | undefined {
  const fragmented = nodes.filter(
    ({ figures }) =>
      figures.memFragmentationRatio !== null &&
      figures.memFragmentationRatio > thresholds.maxFragmentation &&
      (figures.usedMemoryBytes ?? 0) >= thresholds.minBytesForFragmentation,
  );
  if (fragmented.length === 0) return undefined;
  const worst = Math.max(...fragmented.map((node) => node.figures.memFragmentationRatio!));
  return {
    code: 'high-fragmentation',
    message:
      `mem_fragmentation_ratio is ${worst.toFixed(2)}${on(addresses(fragmented), nodes)} (above ` +
      `${thresholds.maxFragmentation}): the process holds that many times the memory its data needs.`,
    advice:
      'Enable active defragmentation (CONFIG SET activedefrag yes, Redis 4+ with jemalloc), or restart the ' +
      'server in a quiet hour; keep maxmemory at about 75% of the RAM to leave room for it.',
    nodes: addresses(fragmented),
  };
}

function lowHitRate(server: ServerFigures, thresholds: RedFlagThresholds): RedFlag | undefined {
  const { hitRate, keyspaceHits, keyspaceMisses } = server;
  if (hitRate === null || keyspaceHits === null || keyspaceMisses === null) return undefined;
  if (keyspaceHits + keyspaceMisses < thresholds.minLookups || hitRate >= thresholds.minHitRate) return undefined;
  return {
    code: 'low-hit-rate',
    message:
      `Keyspace hit rate is ${(hitRate * 100).toFixed(1)}% (${keyspaceHits.toLocaleString('en-US')} hits, ` +
      `${keyspaceMisses.toLocaleString('en-US')} misses since the server started), below ` +
      `${(thresholds.minHitRate * 100).toFixed(0)}%.`,
    advice:
      'Find the caches that miss (per-method hit rates in CacheService.stats() or the metrics), and stop caching ' +
      'what is read once; raise TTLs that are shorter than the time between reads. Evictions (evicted_keys) ' +
      'rising with misses mean maxmemory is too small for the working set.',
  };
}

/** Prefixes holding keys without a TTL, most such keys first. */
function prefixesWithoutTtl(prefixes: readonly PrefixReport[]): PrefixReport[] {
  return prefixes.filter((prefix) => prefix.withoutTtl > 0).sort((a, b) => b.withoutTtl - a.withoutTtl);
}

/** `cache:legacy (1,200), tmp (3)` and "and N more prefixes" past NAMED_PREFIXES. */
function named(holding: readonly PrefixReport[]): string {
  const shown = holding
    .slice(0, NAMED_PREFIXES)
    .map((prefix) => `${prefix.prefix} (${prefix.withoutTtl.toLocaleString('en-US')})`);
  const more = holding.length - NAMED_PREFIXES;
  return more > 0 ? `${shown.join(', ')} and ${more} more prefix(es)` : shown.join(', ');
}

function addresses(nodes: readonly NodeReport[]): string[] {
  return nodes.map((node) => node.address);
}

/** ` on 127.0.0.1:7001` when only some servers of several are concerned; nothing for all, or for one. */
function on(concerned: readonly string[], nodes: readonly NodeReport[]): string {
  return nodes.length > 1 && concerned.length < nodes.length ? ` on ${concerned.join(', ')}` : '';
}
