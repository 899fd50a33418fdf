import { StreamableFile } from '@nestjs/common';
import type { CachedHttpResponse } from './cached-http-response.js';
import { hasResponseHeader, responseHeader, responseStatus } from './http-platform.js';

/**
 * The response headers stored with a body and set again on a hit. Others are not: what the route's
 * `@Header()`s set is set on every request anyway, and the rest (`Set-Cookie` above all) belongs to
 * the request that got it.
 */
export const REPLAYED_HEADERS = ['content-type', 'content-language', 'cache-control', 'vary'] as const;

/** What may be stored of a sent response: its status, the headers to replay and the names it varied on. */
export interface StorableResponse {
  readonly status: number;
  readonly headers: CachedHttpResponse['headers'];
  /** Sorted, lower-case request header names of its `Vary`; empty without one. */
  readonly vary: readonly string[];
}

/**
 * Decides, from the response as it was sent (final status and headers), whether it may be served to
 * other requests, and returns what to store; `undefined` when it must not be stored:
 * - a status outside 2xx, or 206 (a part of the resource, not the resource);
 * - a `Set-Cookie`: the response was personal to the request that got it;
 * - `Cache-Control: private` or `no-store`: the server said so;
 * - `Vary: *`: no request is known to be equivalent to this one.
 */
export function storableResponse(response: object): StorableResponse | undefined {
  const status = responseStatus(response);
  if (status < 200 || status > 299 || status === 206) return undefined;
  if (hasResponseHeader(response, 'set-cookie')) return undefined;
  const cacheControl = directives(responseHeader(response, 'cache-control'));
  if (cacheControl.has('private') || cacheControl.has('no-store')) return undefined;
  const vary = varyNames(responseHeader(response, 'vary'));
  if (vary === undefined) return undefined;
  const headers: Record<string, string> = {};
  for (const name of REPLAYED_HEADERS) {
    const value = responseHeader(response, name);
    if (value !== undefined) headers[name] = value;
  }
  return { status, headers, vary };
}

/**
 * False for handler results that are not a value to keep: a `StreamableFile`, a Node or web stream
 * (Nest sends them by piping; they can be read once).
 */
export function isReplayableBody(body: unknown): boolean {
  if (body instanceof StreamableFile) return false;
  if (typeof body !== 'object' || body === null) return true;
  const candidate = body as { pipe?: unknown; getReader?: unknown };
  return typeof candidate.pipe !== 'function' && typeof candidate.getReader !== 'function';
}

/** The names in a `Vary` header, sorted, lower-case and unique; `undefined` for `Vary: *`. */
export function varyNames(header: string | undefined): string[] | undefined {
  const names = new Set(
    (header ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  return names.has('*') ? undefined : [...names].sort();
}

/** The directive names of a `Cache-Control` header (`private="set-cookie"` counts as `private`). */
function directives(header: string | undefined): Set<string> {
  return new Set(
    (header ?? '')
      .split(',')
      .map((directive) => directive.split('=')[0].trim().toLowerCase())
      .filter(Boolean),
  );
}
