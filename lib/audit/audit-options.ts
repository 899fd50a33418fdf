import { RedisCacheConfigError } from '../errors.js';

/** Where a scan stands, for a progress display. */
export interface AuditProgress {
  /** Keys inspected so far. */
  readonly scanned: number;
  /** DBSIZE summed over the servers scanned; undefined when a MATCH pattern narrows the scan. */
  readonly total: number | undefined;
}

/** When a figure becomes a red flag. */
export interface RedFlagThresholds {
  /** A keyspace hit rate below this is flagged. Default 0.8 (the seeds' "target: 80%+"). */
  readonly minHitRate: number;
  /** ...once there were at least this many lookups (hits + misses) since the server started. Default 1000. */
  readonly minLookups: number;
  /** A mem_fragmentation_ratio above this is flagged. Default 1.5. */
  readonly maxFragmentation: number;
  /**
   * ...on a server using at least this many bytes. Default 5 MiB: below it the ratio compares the
   * allocator's fixed overhead with almost nothing (Redis's own MEMORY DOCTOR ignores it there too).
   */
  readonly minBytesForFragmentation: number;
}

/**
 * Options of `auditKeyspace`. All optional.
 *
 * @example
 * const report = await auditKeyspace(redis, { match: 'cache:*', depth: 2, sample: 500 });
 */
export interface KeyspaceAuditOptions {
  /**
   * SCAN MATCH glob. Default `'*'`. With a client that has a `keyPrefix`, the pattern applies under
   * it: the audit sees the keys that client can reach, as ioredis prefixes every other command.
   */
  match?: string;
  /** What separates the segments of a key name. Default `':'`. */
  separator?: string;
  /**
   * How many leading segments name a key's prefix: at depth 2, `cache:user:42` counts under
   * `cache:user`. A key never is its own prefix: `user:42` counts under `user`. Default 2.
   */
  depth?: number;
  /**
   * MEMORY USAGE is called for every key of a prefix up to this many, then for a shrinking random
   * sample of the rest, and the prefix's bytes are extrapolated (marked as estimated). Default 1000.
   */
  sample?: number;
  /** SCAN COUNT: how much each SCAN call walks. Default 1000. */
  count?: number;
  /** At most this many distinct prefixes are kept; keys of others count under `(other prefixes)`. Default 1000. */
  maxPrefixes?: number;
  /** When figures become red flags. */
  thresholds?: Partial<RedFlagThresholds>;
  /** Called after each SCAN batch. */
  onProgress?: (progress: AuditProgress) => void;
}

/** The options with their defaults, checked. */
export interface AuditSettings {
  readonly match: string;
  readonly separator: string;
  readonly depth: number;
  readonly sample: number;
  readonly count: number;
  readonly maxPrefixes: number;
  readonly thresholds: RedFlagThresholds;
  readonly onProgress: ((progress: AuditProgress) => void) | undefined;
}

export const AUDIT_DEFAULTS = {
  match: '*',
  separator: ':',
  depth: 2,
  sample: 1_000,
  count: 1_000,
  maxPrefixes: 1_000,
} as const;

export const DEFAULT_THRESHOLDS: RedFlagThresholds = {
  minHitRate: 0.8,
  minLookups: 1_000,
  maxFragmentation: 1.5,
  minBytesForFragmentation: 5 * 1024 * 1024,
};

/** Applies the defaults; a wrong value throws a RedisCacheConfigError naming every bad option. */
export function resolveAuditOptions(options: KeyspaceAuditOptions = {}): AuditSettings {
  const problems: string[] = [];
  const positiveInteger = (name: keyof typeof AUDIT_DEFAULTS, value: unknown, fallback: number): number => {
    if (value === undefined) return fallback;
    if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
    problems.push(`${name} must be a positive integer (got ${String(value)})`);
    return fallback;
  };
  const text = (name: keyof typeof AUDIT_DEFAULTS, value: unknown, fallback: string): string => {
    if (value === undefined) return fallback;
    if (typeof value === 'string' && value.length > 0) return value;
    problems.push(`${name} must be a non-empty string (got ${String(value)})`);
    return fallback;
  };
  const settings: AuditSettings = {
    match: text('match', options.match, AUDIT_DEFAULTS.match),
    separator: text('separator', options.separator, AUDIT_DEFAULTS.separator),
    depth: positiveInteger('depth', options.depth, AUDIT_DEFAULTS.depth),
    sample: positiveInteger('sample', options.sample, AUDIT_DEFAULTS.sample),
    count: positiveInteger('count', options.count, AUDIT_DEFAULTS.count),
    maxPrefixes: positiveInteger('maxPrefixes', options.maxPrefixes, AUDIT_DEFAULTS.maxPrefixes),
    thresholds: { ...DEFAULT_THRESHOLDS, ...options.thresholds },
    onProgress: options.onProgress,
  };
  if (problems.length > 0) {
    throw new RedisCacheConfigError(`Invalid auditKeyspace options:\n  - ${problems.join('\n  - ')}`);
  }
  return settings;
}
