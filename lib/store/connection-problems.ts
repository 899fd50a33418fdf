import { connect } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import { isCluster } from './guarded-commands.js';

/** TLS errors that say the certificate is wrong for this client, not that the server is away. */
const CERTIFICATE_ERRORS = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * What an error seen while connecting says about the configuration, when it says something no
 * reconnection will change: a certificate the client does not trust, a TLS handshake with a server
 * that does not speak TLS, credentials Redis refuses, a database it does not have. Undefined for an
 * error that an outage explains (refused, reset, timed out). The text never contains a password.
 */
export function configurationProblem(error: unknown): string | undefined {
  // Not `instanceof Error`: Node's own TLS errors come from another realm under some runners (jest).
  if (typeof error !== 'object' || error === null || typeof (error as Error).message !== 'string') return undefined;
  // A command the store wrapped (CacheUnavailableError): what Redis said is its cause.
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined && cause !== error) {
    const problem = configurationProblem(cause);
    if (problem) return problem;
  }
  const code = (error as { code?: unknown }).code;
  const message = redactSecrets((error as Error).message);
  if (typeof code === 'string' && CERTIFICATE_ERRORS.has(code)) {
    return `the server's TLS certificate was refused (${code}: ${message}); give the client the CA that signed it (tls: { ca })`;
  }
  if ((typeof code === 'string' && code.startsWith('ERR_SSL_')) || code === 'EPROTO') {
    return `the TLS handshake failed (${String(code)}: ${message}); is this port serving TLS?`;
  }
  if (/^(WRONGPASS|NOAUTH|ERR AUTH|ERR invalid password|ERR Client sent AUTH)/.test(message)) {
    return `Redis refused the credentials (${message}); check the user name and password`;
  }
  if (/DB index is out of range|invalid DB index/i.test(message)) {
    return `Redis has no such database (${message}); pick a database index the server has (see its 'databases' setting)`;
  }
  // NOPERM at the top level; inside a script Redis 7 says "can't run this command".
  if (/^NOPERM|can't run this command or subcommand/.test(message)) {
    return `Redis refused the cache a command (${message}); give its user the rules in the README, "Least privilege"`;
  }
  return undefined;
}

/**
 * For a client that asked for TLS and is not connected: whether its host and port answer plain-text
 * RESP instead (a `rediss://` URL to a server without TLS, where the TLS handshake just hangs).
 * Resolves to the problem to report, or undefined.
 */
export async function tlsToPlainTextServer(client: Redis | Cluster, waitMs = 500): Promise<string | undefined> {
  if (isCluster(client) || !client.options.tls || client.options.sentinels) return undefined;
  const { host = '127.0.0.1', port = 6379 } = client.options;
  const answer = await new Promise<string>((resolve) => {
    const socket = connect({ host, port });
    const done = (text: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    const timer = setTimeout(() => done(''), waitMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString('latin1')));
    socket.on('error', () => done(''));
  });
  if (!/^[+-]/.test(answer)) return undefined;
  return `${host}:${port} answers in plain text, not TLS; use redis:// for it, or the port where it serves TLS`;
}

/**
 * `text` with the password of any URL in it masked (`redis://user:***@host`). Everything from the
 * user's `:` to the last `@` goes, so a password with `/`, spaces or `@` in it (unescaped, as people
 * type them) is masked whole: masking too much is the safe side.
 */
export function redactSecrets(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:@/\s]*):.*@/gi, '$1:***@');
}
