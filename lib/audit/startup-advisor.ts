import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { RedisCacheModuleOptions } from '../options/redis-cache-options.interface.js';
import { isCluster } from '../store/guarded-commands.js';
import { addressOf, escapeGlob, keyPrefixOf } from './audit-nodes.js';
import { printable } from './printable.js';
import { parseInfo } from './server-figures.js';

/** Which checks run (every one unless switched off). */
export interface StartupAdvisorChecks {
  readonly maxmemory: boolean;
  readonly evictionPolicy: boolean;
  readonly keysWithoutTtl: boolean;
}

/** The module's `startupAdvisor` option as it is given. */
export type StartupAdvisorOption = RedisCacheModuleOptions['startupAdvisor'];

/** What the advisor needs of the cache. */
export interface StartupAdvisorContext {
  readonly namespace: string;
  /** The `startupAdvisor` option (validated by resolveCacheOptions). */
  readonly checks: StartupAdvisorOption;
}

/** Where the advice goes; Nest's Logger by default. */
export interface AdvisorLogger {
  warn(message: string): unknown;
}

/** The sample of the namespace's keys: at most this many keys, in at most SCAN_CALLS SCANs per server. */
const SAMPLE_KEYS = 1_000;
const SCAN_CALLS = 5;
const SCAN_COUNT = 1_000;
/** Keys without a TTL named in a warning. */
const EXAMPLES = 3;

/** The option as checks: `undefined`/`true` all on, `false` all off, an object switches single ones off. */
export function resolveAdvisorChecks(option: StartupAdvisorOption): StartupAdvisorChecks {
  if (option === false) return { maxmemory: false, evictionPolicy: false, keysWithoutTtl: false };
  const given = typeof option === 'object' && option !== null ? option : {};
  return {
    maxmemory: given.maxmemory !== false,
    evictionPolicy: given.evictionPolicy !== false,
    keysWithoutTtl: given.keysWithoutTtl !== false,
  };
}

/** One server's memory settings from INFO memory; null fields: not reported. */
export interface MemorySettings {
  readonly address: string;
  readonly maxmemoryBytes: number | null;
  readonly policy: string | null;
}

/** What the bounded SCAN of the namespace found. */
export interface NamespaceSample {
  /** Keys whose PTTL was read. */
  readonly inspected: number;
  /** Those without a TTL (PTTL -1), as Redis names them. */
  readonly withoutTtl: readonly string[];
}

/**
 * Checks the Redis the cache runs on, once after it connected, and logs what needs fixing as
 * warnings (context `RedisCacheAdvisor`): no maxmemory; a maxmemory-policy of noeviction, or a
 * volatile-* one while keys of the namespace have no TTL; keys of the namespace without a TTL. It
 * reads INFO memory (not CONFIG, which the README's least-privilege user may not run) and a
 * bounded sample of the namespace (at most 1,000 keys, 5 SCAN calls per server: never the whole
 * keyspace at bootstrap). It never throws and skips silently whatever Redis refuses; call it
 * without awaiting it, so it never delays the bootstrap.
 *
 * @example
 * void adviseAtStartup(client, { namespace: 'cache', checks: options.startupAdvisor });
 */
export async function adviseAtStartup(
  client: Redis | Cluster,
  context: StartupAdvisorContext,
  logger: AdvisorLogger = new Logger('RedisCacheAdvisor'),
): Promise<void> {
  try {
    const enabled = resolveAdvisorChecks(context.checks);
    if (!enabled.maxmemory && !enabled.evictionPolicy && !enabled.keysWithoutTtl) return;
    // Not connected yet (the app started without the cache): nothing to ask, and no queue to wait in.
    if (client.status !== 'ready') return;
    const servers = isCluster(client) ? client.nodes('master') : [client];
    const [settings, sample] = await Promise.all([
      enabled.maxmemory || enabled.evictionPolicy ? readMemorySettings(servers) : [],
      enabled.keysWithoutTtl || enabled.evictionPolicy ? sampleNamespace(servers, context.namespace) : undefined,
    ]);
    for (const warning of startupWarnings(context.namespace, enabled, settings, sample)) logger.warn(warning);
  } catch {
    // Advice is optional: a refusal or a connection lost halfway ends it without a word.
  }
}

/** The warnings for what was read; pure, so each rule is tested on its own. */
export function startupWarnings(
  namespace: string,
  enabled: StartupAdvisorChecks,
  settings: readonly MemorySettings[],
  sample: NamespaceSample | undefined,
): string[] {
  const warnings: string[] = [];
  const where = (concerned: readonly MemorySettings[]) =>
    settings.length > 1 && concerned.length < settings.length
      ? ` on ${concerned.map((server) => server.address).join(', ')}`
      : '';
  const unbounded = settings.filter((server) => server.maxmemoryBytes === 0);
  if (enabled.maxmemory && unbounded.length > 0) {
    warnings.push(
      `Redis has no maxmemory set${where(unbounded)}: the cache (namespace '${namespace}') grows until the ` +
        'machine runs out of memory. Set maxmemory to about 75% of the RAM, with maxmemory-policy allkeys-lru ' +
        '(startupAdvisor: { maxmemory: false } silences this).',
    );
  }
  const refusing = settings.filter((server) => server.policy === 'noeviction');
  if (enabled.evictionPolicy && refusing.length > 0) {
    warnings.push(
      `Redis's maxmemory-policy is noeviction${where(refusing)}: once it is full, every cache write fails ` +
        'instead of evicting old entries. Use allkeys-lru or allkeys-lfu for a cache ' +
        '(startupAdvisor: { evictionPolicy: false } silences this).',
    );
  }
  const volatile = settings.filter((server) => server.policy?.startsWith('volatile-') === true);
  const persistent = sample?.withoutTtl ?? [];
  if (enabled.evictionPolicy && volatile.length > 0 && persistent.length > 0) {
    const policies = [...new Set(volatile.map((server) => server.policy))].join(', ');
    warnings.push(
      `Redis's maxmemory-policy is ${policies}${where(volatile)}, which evicts only keys with a TTL, and ` +
        `${persistent.length} of ${sample!.inspected} keys sampled under '${namespace}:' have none ` +
        `(${examples(persistent)}): they can never be evicted. Give them a TTL, or use allkeys-lru ` +
        '(startupAdvisor: { evictionPolicy: false } silences this).',
    );
  }
  if (enabled.keysWithoutTtl && persistent.length > 0) {
    warnings.push(
      `${persistent.length} of ${sample!.inspected} keys sampled under '${namespace}:' have no TTL ` +
        `(${examples(persistent)}): they stay until deleted. The module writes every entry with a TTL, so ` +
        'something else wrote these (the raw client, another app): give them one (EXPIRE) or keep them out of ' +
        "the cache's namespace (startupAdvisor: { keysWithoutTtl: false } silences this).",
    );
  }
  return warnings;
}

function examples(keys: readonly string[]): string {
  const shown = keys.slice(0, EXAMPLES).map(printable).join(', ');
  return keys.length > EXAMPLES ? `e.g. ${shown}` : shown;
}

/** maxmemory and its policy from each server's INFO memory; a server that refuses INFO is left out. */
async function readMemorySettings(servers: readonly Redis[]): Promise<MemorySettings[]> {
  const read = await Promise.all(
    servers.map(async (server): Promise<MemorySettings | undefined> => {
      try {
        const info = parseInfo(await server.info('memory'));
        const maxmemory = info.get('maxmemory');
        return {
          address: addressOf(server),
          maxmemoryBytes: maxmemory === undefined ? null : Number(maxmemory),
          policy: info.get('maxmemory_policy') ?? null,
        };
      } catch {
        return undefined;
      }
    }),
  );
  return read.filter((settings): settings is MemorySettings => settings !== undefined);
}

/**
 * A bounded sample of the namespace's keys and which of them have no TTL: each server gets an equal
 * share of SAMPLE_KEYS and at most SCAN_CALLS SCANs. Undefined when Redis refused SCAN or PTTL.
 */
async function sampleNamespace(servers: readonly Redis[], namespace: string): Promise<NamespaceSample | undefined> {
  try {
    // SAMPLE_KEYS split between the servers, the remainder to the first ones.
    const share = (i: number) => Math.floor(SAMPLE_KEYS / servers.length) + (i < SAMPLE_KEYS % servers.length ? 1 : 0);
    const found = await Promise.all(servers.map((server, i) => sampleServer(server, namespace, share(i))));
    return {
      inspected: found.reduce((sum, server) => sum + server.inspected, 0),
      withoutTtl: found.flatMap((server) => server.withoutTtl),
    };
  } catch {
    return undefined;
  }
}

async function sampleServer(server: Redis, namespace: string, limit: number): Promise<NamespaceSample> {
  const keyPrefix = keyPrefixOf(server);
  // SCAN's pattern is not prefixed by ioredis: the client's keyPrefix goes in front by hand.
  const match = `${escapeGlob(keyPrefix + namespace)}:*`;
  const keys: string[] = [];
  let cursor = '0';
  for (let call = 0; call < SCAN_CALLS && keys.length < limit; call++) {
    const [next, found] = await server.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
    keys.push(...found.slice(0, limit - keys.length));
    cursor = next;
    if (cursor === '0') break;
  }
  if (keys.length === 0) return { inspected: 0, withoutTtl: [] };
  const pipeline = server.pipeline();
  for (const key of keys) pipeline.pttl(key.slice(keyPrefix.length));
  const replies = (await pipeline.exec()) ?? [];
  const withoutTtl: string[] = [];
  let inspected = 0;
  replies.forEach(([error, ttl], i) => {
    if (error) throw error;
    if (ttl === -2) return; // gone since the SCAN
    inspected++;
    if (ttl === -1) withoutTtl.push(keys[i]!);
  });
  return { inspected, withoutTtl };
}
