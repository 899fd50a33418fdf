import type { Redis } from 'ioredis';
import { addressOf, escapeGlob, keyPrefixOf } from './audit-nodes.js';
import type { PrefixTallies, PrefixTally } from './prefix-tally.js';

/** How one server is walked. */
export interface ScanPlan {
  /** SCAN MATCH, under the client's keyPrefix (see `patternFor`). */
  readonly match: string;
  readonly count: number;
  /** Keys per prefix measured before sampling (PrefixTally `measureChance`). */
  readonly sample: number;
}

/** Shared by the servers of one audit: once Redis refuses MEMORY USAGE, it is not sent again. */
export interface MemoryUsageState {
  refused: string | undefined;
}

/**
 * The SCAN pattern for `server`: ioredis prefixes every key a command names but not SCAN's pattern,
 * so a client with a keyPrefix scans under it, and sees the keys its other commands can address.
 */
export function patternFor(server: Redis, match: string): string {
  return escapeGlob(keyPrefixOf(server)) + match;
}

/**
 * Walks one server with SCAN (never KEYS) and counts every key in `tallies`: its PTTL, and for the
 * keys the sampling picks its MEMORY USAGE, pipelined per SCAN batch. The next SCAN is sent while a
 * batch's pipeline runs, so the walk pays one round trip per batch, not two. `server` must be a
 * connection without a keyPrefix: the keys SCAN returns are sent back as they are (ioredis 5 and 6
 * do not agree on whether MEMORY USAGE's key gets the prefix).
 */
export async function scanServer(
  server: Redis,
  plan: ScanPlan,
  tallies: PrefixTallies,
  memory: MemoryUsageState,
  onBatch: (keys: number) => void,
  random: () => number = Math.random,
): Promise<void> {
  const scan = (cursor: string) => {
    const reply = server.scan(cursor, 'MATCH', plan.match, 'COUNT', plan.count);
    // Awaited below; until then (while a batch runs) its failure must not count as unhandled.
    reply.catch(() => undefined);
    return reply;
  };
  let next: Promise<[string, string[]]> | undefined = scan('0');
  while (next) {
    const [cursor, keys]: [string, string[]] = await next;
    next = cursor === '0' ? undefined : scan(cursor);
    if (keys.length === 0) continue;
    await inspectBatch(server, keys, plan, tallies, memory, random);
    onBatch(keys.length);
  }
}

/** What was asked about one key in a batch's pipeline. */
interface KeyQuery {
  readonly tally: PrefixTally;
  /** The chance it had to be measured, when MEMORY USAGE was sent for it. */
  readonly chance: number | undefined;
}

async function inspectBatch(
  server: Redis,
  keys: readonly string[],
  plan: ScanPlan,
  tallies: PrefixTallies,
  memory: MemoryUsageState,
  random: () => number,
): Promise<void> {
  const pipeline = server.pipeline();
  const queries: KeyQuery[] = [];
  for (const key of keys) {
    const tally = tallies.forKey(key);
    pipeline.pttl(key);
    let chance: number | undefined;
    if (memory.refused === undefined) {
      const offered = tally.measureChance(plan.sample);
      if (offered === 1 || random() < offered) {
        chance = offered;
        pipeline.memory('USAGE', key);
      }
    }
    queries.push({ tally, chance });
  }
  const replies = (await pipeline.exec()) ?? [];
  let at = 0;
  for (const { tally, chance } of queries) {
    const [ttlError, ttl] = replies[at++] ?? [new Error('no reply')];
    let bytes: { bytes: number; chance: number } | undefined;
    if (chance !== undefined) {
      const [memoryError, usage] = replies[at++] ?? [new Error('no reply')];
      // Refused (an ACL without +memory, a managed Redis without the command): sizes stay unknown.
      if (memoryError) memory.refused ??= memoryError.message;
      else if (typeof usage === 'number') bytes = { bytes: usage, chance };
    }
    if (ttlError) {
      throw new Error(`PTTL failed on ${addressOf(server)}: ${ttlError.message}`, { cause: ttlError });
    }
    // -2: the key expired or was deleted since SCAN returned it.
    if (ttl === -2) continue;
    tally.add(ttl === -1 ? undefined : Number(ttl), bytes);
  }
}
