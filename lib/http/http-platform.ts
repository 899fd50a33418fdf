import type { ServerResponse } from 'node:http';

/**
 * What the HTTP cache reads from Express's and Fastify's request and response objects: both expose
 * `headers` on the request and `statusCode` / `getHeader()` on the response (Fastify's reply reads its
 * own headers and the raw response's), and Fastify keeps the Node response under `raw`. Writing goes
 * through Nest's HttpAdapter instead (see HttpCacheInterceptor).
 */
interface PlatformRequest {
  headers?: Readonly<Record<string, string | string[] | undefined>>;
}

interface PlatformResponse {
  statusCode?: number;
  getHeader?: (name: string) => unknown;
  raw?: ServerResponse;
}

/** The request's headers (lower-case names, as Node parses them). */
export function requestHeaders(request: object): Readonly<Record<string, string | string[] | undefined>> {
  return (request as PlatformRequest).headers ?? {};
}

/** One request header as a single string (repeated ones joined as HTTP joins them); `undefined` when absent. */
export function requestHeader(request: object, name: string): string | undefined {
  const value = requestHeaders(request)[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The response's status code as it stands (its final one once the response is sent). */
export function responseStatus(response: object): number {
  return (response as PlatformResponse).statusCode ?? 200;
}

/** A response header as one string (repeated ones joined with `, `); `undefined` when absent. */
export function responseHeader(response: object, name: string): string | undefined {
  const value = (response as PlatformResponse).getHeader?.(name);
  if (value === undefined || value === null) return undefined;
  return Array.isArray(value) ? value.map(String).join(', ') : String(value);
}

/** True when the response carries the header at all (an empty `Set-Cookie` list counts as absent). */
export function hasResponseHeader(response: object, name: string): boolean {
  const value = (response as PlatformResponse).getHeader?.(name);
  return Array.isArray(value) ? value.length > 0 : value !== undefined && value !== null;
}

/**
 * Calls `sent` once the response has been handed to the network in full, with its final status and
 * headers (what session middleware, `onSend` hooks and outer interceptors added included). Never called
 * for a response the client abandoned before it was sent.
 */
export function whenResponseSent(response: object, sent: () => void): void {
  const raw = (response as PlatformResponse).raw ?? (response as ServerResponse);
  if (raw.writableFinished) sent();
  else raw.once('finish', sent);
}
