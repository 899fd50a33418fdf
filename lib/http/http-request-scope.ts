import type { ResolvedHttpCacheOptions } from './http-cache-options.js';
import { requestHeader } from './http-platform.js';

/**
 * True when the request says who is asking, so its response may be personal: it carries one of the
 * credential headers (`Authorization` by default), or a cookie that is not listed in
 * `anonymousCookies` (by default every cookie counts: a session cookie is the usual way a browser
 * authenticates, and the cache cannot tell it from another).
 */
export function isAuthenticatedRequest(request: object, options: ResolvedHttpCacheOptions): boolean {
  if (options.credentialHeaders.some((name) => requestHeader(request, name) !== undefined)) return true;
  const cookie = requestHeader(request, 'cookie');
  if (cookie === undefined) return false;
  return cookie.split(';').some((pair) => {
    if (pair.trim() === '') return false;
    // A cookie without `=` is a value with an empty name, as browsers read it.
    const name = pair.includes('=') ? pair.slice(0, pair.indexOf('=')).trim() : '';
    return !options.anonymousCookies.has(name);
  });
}
