/**
 * What `auditKeyspace` returns: plain data (no Map, no Infinity), so `JSON.stringify` prints it as is
 * (json-report.ts adds only a schema name). Byte counts are Redis's `MEMORY USAGE`; durations are seconds.
 */

/** The spread of the remaining TTLs of a prefix's keys that have one, in seconds. */
export interface TtlSpread {
  readonly minSeconds: number;
  readonly p50Seconds: number;
  readonly p90Seconds: number;
  readonly maxSeconds: number;
  /**
   * True when p50 and p90 come from a uniform sample of the TTLs (more than 10,000 keys with a TTL
   * under the prefix); min and max are always exact.
   */
  readonly sampled: boolean;
}

/** One key prefix: its first `depth` segments (`cache:user:42` at depth 2 is `cache:user`). */
export interface PrefixReport {
  readonly prefix: string;
  readonly keys: number;
  /** Bytes of its keys as `MEMORY USAGE` counts them; null when Redis refused MEMORY USAGE. */
  readonly bytes: number | null;
  /** True when `bytes` was extrapolated from the keys measured (`measuredKeys` < `keys`). */
  readonly bytesEstimated: boolean;
  /** How many keys `MEMORY USAGE` was called for. */
  readonly measuredKeys: number;
  /** Keys without an expiry (PTTL -1): they stay until deleted or evicted. */
  readonly withoutTtl: number;
  /** Over the keys that have a TTL; null when none has. */
  readonly ttl: TtlSpread | null;
}

/** What one server says about itself (INFO, CONFIG GET). Null: unknown (refused, or not reported). */
export interface ServerFigures {
  readonly keyspaceHits: number | null;
  readonly keyspaceMisses: number | null;
  /** keyspace_hits / (keyspace_hits + keyspace_misses); null before the first lookup. */
  readonly hitRate: number | null;
  readonly evictedKeys: number | null;
  readonly expiredKeys: number | null;
  readonly usedMemoryBytes: number | null;
  readonly usedMemoryHuman: string | null;
  readonly memFragmentationRatio: number | null;
  /** 0: no limit. */
  readonly maxmemoryBytes: number | null;
  readonly maxmemoryPolicy: string | null;
  /** Where maxmemory and its policy were read: CONFIG GET, INFO memory (CONFIG refused), or neither. */
  readonly configSource: 'config' | 'info' | 'unknown';
  /** True when the server runs in cluster mode (INFO cluster). */
  readonly clusterEnabled: boolean;
}

/** A server audited: the one server, or each primary of a Cluster. */
export interface NodeReport {
  /** `host:port`. */
  readonly address: string;
  readonly figures: ServerFigures;
}

export type RedFlagCode =
  | 'no-maxmemory'
  | 'noeviction'
  | 'keys-without-ttl'
  | 'volatile-policy-with-keys-without-ttl'
  | 'high-fragmentation'
  | 'low-hit-rate';

/** A finding that needs action, and what to do about it. */
export interface RedFlag {
  readonly code: RedFlagCode;
  readonly message: string;
  readonly advice: string;
  /** The servers it was found on (config and memory flags). */
  readonly nodes?: readonly string[];
  /** The prefixes holding the keys in question (keys without TTL), most keys first. */
  readonly prefixes?: readonly string[];
}

/** The result of one audit. */
export interface KeyspaceAuditReport {
  /** When the audit finished (ISO 8601). */
  readonly finishedAt: string;
  readonly durationMs: number;
  /** What was scanned and how keys were grouped. */
  readonly scope: {
    readonly nodes: readonly string[];
    /** The SCAN MATCH pattern sent (the client's keyPrefix, if any, in front of the requested one). */
    readonly match: string;
    readonly separator: string;
    readonly depth: number;
    /** Keys measured with MEMORY USAGE per prefix before sampling starts. */
    readonly sample: number;
  };
  readonly totals: {
    readonly keys: number;
    readonly withoutTtl: number;
    readonly bytes: number | null;
    readonly bytesEstimated: boolean;
    readonly prefixes: number;
  };
  /** Most bytes first (most keys first when bytes are unknown). */
  readonly prefixes: readonly PrefixReport[];
  /**
   * True when there were more distinct prefixes than `maxPrefixes`: the keys of the others are
   * counted under `(other prefixes)`.
   */
  readonly prefixesTruncated: boolean;
  /** What Redis said when it refused MEMORY USAGE (then every `bytes` is null); absent otherwise. */
  readonly memoryUsageRefused?: string;
  /** The figures of every node, summed (counters), worst (fragmentation) or shared (config). */
  readonly server: ServerFigures;
  readonly nodes: readonly NodeReport[];
  readonly redFlags: readonly RedFlag[];
}
