import type { PrefixReport, TtlSpread } from './audit-report.js';

/** Where keys go once `maxPrefixes` distinct prefixes are kept. */
export const OTHER_PREFIXES = '(other prefixes)';

/** TTLs kept per prefix for its percentiles: exact up to this many, a uniform sample past it. */
export const TTL_SAMPLE_SIZE = 10_000;

/**
 * The prefix of `key`: its first `depth` segments, never the whole key (`user:42` at depth 2 is
 * `user`: the last segment is the id that makes keys distinct). A key without the separator is its
 * own prefix.
 */
export function prefixOf(key: string, separator: string, depth: number): string {
  let end = -1;
  let taken = 0;
  for (let at = key.indexOf(separator); at !== -1; at = key.indexOf(separator, at + separator.length)) {
    end = at;
    if (++taken === depth) break;
  }
  return end === -1 ? key : key.slice(0, end);
}

/** The `q` quantile (0..1) of ascending `sorted` by nearest rank: a value that occurs in it. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of no values');
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1]!;
}

/** Milliseconds as seconds with millisecond precision. */
const toSeconds = (ms: number) => Math.round(ms) / 1_000;

/**
 * What the audit learns about one prefix, in memory bounded whatever the keyspace: counts, the
 * extreme TTLs, a reservoir of TTLs for percentiles (algorithm R), and a weighted sum of the bytes
 * measured, for an estimate that stays unbiased while measurements thin out.
 */
export class PrefixTally {
  keys = 0;
  withoutTtl = 0;
  measured = 0;
  private offered = 0;
  private withTtl = 0;
  private minTtlMs = Infinity;
  private maxTtlMs = -Infinity;
  private readonly ttlSample: number[] = [];
  private weightedBytes = 0;
  private weights = 0;

  constructor(private readonly random: () => number = Math.random) {}

  /**
   * The chance with which the next key of this prefix is measured: 1 for the first `sample` keys,
   * `sample / n` for the n-th after them, so a prefix of N keys costs about
   * `sample * (1 + ln(N / sample))` MEMORY USAGE calls, spread over the whole scan.
   */
  measureChance(sample: number): number {
    this.offered++;
    return this.offered <= sample ? 1 : sample / this.offered;
  }

  /**
   * Counts one key. `ttlMs`: its remaining TTL, or undefined when it has none. `bytes`: its MEMORY
   * USAGE when it was measured, with the chance it had to be (the key stands for 1/chance keys).
   */
  add(ttlMs: number | undefined, bytes?: { bytes: number; chance: number }): void {
    this.keys++;
    if (ttlMs === undefined) this.withoutTtl++;
    else this.addTtl(ttlMs);
    if (bytes) {
      this.measured++;
      this.weightedBytes += bytes.bytes / bytes.chance;
      this.weights += 1 / bytes.chance;
    }
  }

  /** The prefix's report; `bytes` null when MEMORY USAGE was not available. */
  report(prefix: string, memoryAvailable: boolean): PrefixReport {
    const exact = this.measured === this.keys;
    let bytes: number | null = null;
    if (memoryAvailable && this.measured > 0) {
      bytes = exact ? this.weightedBytes : Math.round((this.keys * this.weightedBytes) / this.weights);
    }
    return {
      prefix,
      keys: this.keys,
      bytes,
      bytesEstimated: bytes !== null && !exact,
      measuredKeys: this.measured,
      withoutTtl: this.withoutTtl,
      ttl: this.ttlSpread(),
    };
  }

  private addTtl(ms: number): void {
    this.withTtl++;
    if (ms < this.minTtlMs) this.minTtlMs = ms;
    if (ms > this.maxTtlMs) this.maxTtlMs = ms;
    if (this.ttlSample.length < TTL_SAMPLE_SIZE) {
      this.ttlSample.push(ms);
      return;
    }
    const slot = Math.floor(this.random() * this.withTtl);
    if (slot < TTL_SAMPLE_SIZE) this.ttlSample[slot] = ms;
  }

  private ttlSpread(): TtlSpread | null {
    if (this.withTtl === 0) return null;
    const sorted = [...this.ttlSample].sort((a, b) => a - b);
    return {
      minSeconds: toSeconds(this.minTtlMs),
      p50Seconds: toSeconds(percentile(sorted, 0.5)),
      p90Seconds: toSeconds(percentile(sorted, 0.9)),
      maxSeconds: toSeconds(this.maxTtlMs),
      sampled: this.withTtl > TTL_SAMPLE_SIZE,
    };
  }
}

/** The tallies of every prefix seen, at most `maxPrefixes` of them (then `(other prefixes)`). */
export class PrefixTallies {
  /** True once a prefix had to go under OTHER_PREFIXES. */
  truncated = false;
  private readonly byPrefix = new Map<string, PrefixTally>();

  constructor(
    private readonly grouping: { separator: string; depth: number; maxPrefixes: number },
    private readonly random: () => number = Math.random,
  ) {}

  /** The tally `key` counts in. */
  forKey(key: string): PrefixTally {
    let prefix = prefixOf(key, this.grouping.separator, this.grouping.depth);
    let tally = this.byPrefix.get(prefix);
    if (tally) return tally;
    if (this.byPrefix.size >= this.grouping.maxPrefixes) {
      this.truncated = true;
      prefix = OTHER_PREFIXES;
      tally = this.byPrefix.get(prefix);
      if (tally) return tally;
    }
    tally = new PrefixTally(this.random);
    this.byPrefix.set(prefix, tally);
    return tally;
  }

  /** Every prefix with at least one key, most bytes first (most keys when bytes are unknown). */
  reports(memoryAvailable: boolean): PrefixReport[] {
    return [...this.byPrefix]
      .map(([prefix, tally]) => tally.report(prefix, memoryAvailable))
      .filter((report) => report.keys > 0)
      .sort(
        (a, b) =>
          (b.bytes ?? -1) - (a.bytes ?? -1) ||
          b.keys - a.keys ||
          (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0),
      );
  }
}
