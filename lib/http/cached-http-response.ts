/**
 * What the HTTP cache stores (through CacheService, so with the module's codec, TTL and jitter): a
 * response, or the record of the request headers a route's responses vary on (see http-response-key.ts).
 */

/** A stored response: replayed with its status and headers, and its body handed back to Nest to send. */
export interface CachedHttpResponse {
  readonly kind: 'response';
  readonly status: number;
  /** The headers worth replaying (REPLAYED_HEADERS), lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** What the handler returned; absent when it returned `undefined`. */
  readonly body?: unknown;
}

/** "Responses of this route varied on these request headers": where to look for the variant. */
export interface HttpVaryRecord {
  readonly kind: 'vary';
  /** Sorted, lower-case, without duplicates. */
  readonly names: readonly string[];
}

export type HttpCacheRecord = CachedHttpResponse | HttpVaryRecord;

/**
 * `value` when it is a record this interceptor wrote, else `undefined` (a miss): whatever else sits at
 * the key (written by hand under `http:`, or by another version) is never replayed.
 */
export function asHttpCacheRecord(value: unknown): HttpCacheRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (record.kind === 'vary') {
    const { names } = record;
    return Array.isArray(names) && names.length > 0 && names.every((name) => typeof name === 'string')
      ? (record as unknown as HttpVaryRecord)
      : undefined;
  }
  if (record.kind === 'response') {
    const { status, headers } = record;
    const validHeaders =
      typeof headers === 'object' &&
      headers !== null &&
      Object.values(headers).every((header) => typeof header === 'string');
    return Number.isInteger(status) && validHeaders ? (record as unknown as CachedHttpResponse) : undefined;
  }
  return undefined;
}
