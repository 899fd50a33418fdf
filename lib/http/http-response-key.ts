import { hashPart, stringPart } from '../core/key-hash.js';

/**
 * The logical prefix of every cached HTTP response: `CacheService.clear('http:')` invalidates them all.
 * Keys under it are the interceptor's; do not use the prefix for keys of your own.
 */
export const HTTP_CACHE_PREFIX = 'http:';

/** The scope of a response any request may be served: anonymous requests, `@CachePublic()` routes. */
export const SHARED_SCOPE = 'shared';

/** The route slot of a key (see HttpResponseKeys). */
const ROUTE_SLOT = '-';

/** The scope of a principal's own responses: its id hashed, so no id or token ever stands in a key. */
export function principalScope(principal: string): string {
  return hashPart('principal', principal);
}

/**
 * The keys of one resource (what `trackBy` returned: the URL, or a `@CacheKey`) as seen by one scope
 * (SHARED_SCOPE or a principal's). Every key has the form
 *
 *   http:<resource>:<scope>:<slot>
 *
 * with exactly one part per position, none containing `:` (the resource is hashed unless it is a short
 * `[A-Za-z0-9_-.]` name, per the module's key rules: a URL always is), so two different requests can
 * only share a key by having the same resource, scope and slot. CacheService hashes the parts that
 * are hashes already once more (a `#` is not a literal segment); that changes nothing but their look.
 *
 * The slots:
 * - `route` (slot `-`) holds either the response, when it was sent without `Vary`, or a vary record:
 *   the names of the request headers the response varied on;
 * - `variant(names, request)` (slot: a hash of those names and this request's values of them) holds a
 *   response sent with `Vary: <names>`.
 */
export class HttpResponseKeys {
  readonly route: string;
  private readonly base: string;

  constructor(resource: string, scope: string) {
    this.base = `${HTTP_CACHE_PREFIX}${stringPart(resource)}:${scope}`;
    this.route = `${this.base}:${ROUTE_SLOT}`;
  }

  /** The key of the response to a request with `values` of the (sorted, lower-case) `names`. */
  variant(names: readonly string[], valueOf: (name: string) => string | undefined): string {
    // A missing header (null) and an empty one ('') are different requests.
    const pairs = names.map((name) => [name, valueOf(name) ?? null]);
    return `${this.base}:${hashPart('vary', JSON.stringify(pairs))}`;
  }
}
