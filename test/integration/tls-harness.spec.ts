// The TLS test server (test/support/tls-redis.ts) and what ioredis makes of it: a client trusting
// the server's CA connects over TLS; one trusting another CA, or none (the rediss:// URL alone), is
// refused with Node's certificate error; TLS aimed at the plain port, or plain text at the TLS port,
// fails the way each of them does. The errors come on the client's 'error' event: connect() itself
// only rejects with "Connection is closed.".
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { startTlsRedis, type TlsRedis } from '../support/tls-redis.js';

/** No reconnection, nothing queued: a failed connection ends the client, with its error. */
const ONE_SHOT: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null };

interface ConnectOutcome {
  /** Whether `connect()` resolved (the client is ready). */
  connected: boolean;
  /** What the client emitted on 'error' while connecting. */
  errors: NodeJS.ErrnoException[];
  /** How long `connect()` took to resolve or reject. */
  ms: number;
}

/**
 * Disconnects `redis` and waits until it has ended. A client that already ended (its connection
 * failed) is left alone: disconnect() would arm a 2 s timer for a socket that is already gone.
 */
async function closeClient(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  const ended = new Promise<void>((resolve) => redis.once('end', () => resolve()));
  redis.disconnect();
  await ended;
}

describe('TLS test server (startTlsRedis)', () => {
  let server: TlsRedis;
  const clients: Redis[] = [];

  /** A client that afterEach disconnects, whatever the test did with it. */
  const client = (...args: [RedisOptions] | [string, RedisOptions]): Redis => {
    const redis = args.length === 1 ? new Redis(args[0]) : new Redis(args[0], args[1]);
    clients.push(redis);
    return redis;
  };

  const tryConnect = async (redis: Redis): Promise<ConnectOutcome> => {
    const errors: NodeJS.ErrnoException[] = [];
    redis.on('error', (error: NodeJS.ErrnoException) => errors.push(error));
    const started = performance.now();
    const connected = await redis.connect().then(
      () => true,
      (error: unknown) => {
        // ioredis's own rejection, the same whatever closed the connection.
        expect((error as Error).message).toBe('Connection is closed.');
        return false;
      },
    );
    return { connected, errors, ms: performance.now() - started };
  };

  beforeAll(async () => {
    server = await startTlsRedis();
  }, 20_000);

  afterEach(async () => {
    await Promise.all(clients.splice(0).map(closeClient));
  });

  afterAll(async () => {
    await server?.stop();
    // The certificates' folder goes with the server.
    if (server) expect(existsSync(dirname(server.caFile))).toBe(false);
  });

  it('answers PING over TLS to a client that trusts its CA', async () => {
    const redis = client({ host: '127.0.0.1', port: server.tlsPort, tls: { ca: server.caPem }, ...ONE_SHOT });
    const outcome = await tryConnect(redis);
    expect(outcome.errors).toEqual([]);
    expect(outcome.connected).toBe(true);
    expect(await redis.ping()).toBe('PONG');
    expect(server.tlsUrl).toBe(`rediss://127.0.0.1:${server.tlsPort}`);
  });

  it('takes the CA from the options object beside a rediss:// URL', async () => {
    const redis = client(server.tlsUrl, { tls: { ca: server.caPem }, ...ONE_SHOT });
    expect(await tryConnect(redis)).toMatchObject({ connected: true, errors: [] });
    expect(await redis.ping()).toBe('PONG');
  });

  it('answers PING on the plain port to a plain client', async () => {
    const redis = client({ host: '127.0.0.1', port: server.plainPort, ...ONE_SHOT });
    expect(await tryConnect(redis)).toMatchObject({ connected: true, errors: [] });
    expect(await redis.ping()).toBe('PONG');
    expect(server.plainUrl).toBe(`redis://127.0.0.1:${server.plainPort}`);
  });

  // The server sends its certificate with the CA after it (OpenSSL builds the chain from
  // tls-ca-cert-file), so Node finds a self-signed certificate it does not trust in the chain.
  it('is refused by a client that trusts another CA (certificate verification error)', async () => {
    const redis = client({ host: '127.0.0.1', port: server.tlsPort, tls: { ca: server.otherCaPem }, ...ONE_SHOT });
    const outcome = await tryConnect(redis);
    expect(outcome.connected).toBe(false);
    expect(outcome.errors).toEqual([
      expect.objectContaining({
        code: 'SELF_SIGNED_CERT_IN_CHAIN',
        message: 'self-signed certificate in certificate chain',
      }),
    ]);
    expect(redis.status).toBe('end');
  });

  it('is refused by a client given only the rediss:// URL (its CA is not one Node trusts)', async () => {
    const redis = client(server.tlsUrl, ONE_SHOT);
    const outcome = await tryConnect(redis);
    expect(outcome.connected).toBe(false);
    expect(outcome.errors).toEqual([expect.objectContaining({ code: 'SELF_SIGNED_CERT_IN_CHAIN' })]);
  });

  it('is refused when the name checked is not in the certificate', async () => {
    const tls = { ca: server.caPem, servername: 'cache.example.com' };
    const redis = client({ host: '127.0.0.1', port: server.tlsPort, tls, ...ONE_SHOT });
    const outcome = await tryConnect(redis);
    expect(outcome.connected).toBe(false);
    expect(outcome.errors).toEqual([
      expect.objectContaining({
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        message: expect.stringContaining("Host: cache.example.com. is not in the cert's altnames"),
      }),
    ]);
  });

  // Redis reads the ClientHello as an inline command and waits for its end (the line stops at the
  // hello's first NUL byte, so it never sees one): it answers nothing and keeps the connection open.
  // Node gets no TLS error at all; only ioredis's connectTimeout (10 s by default) ends the attempt.
  it('leaves a TLS client on the plain port waiting until its connectTimeout', async () => {
    const connectTimeout = 1_000;
    const redis = client({
      host: '127.0.0.1',
      port: server.plainPort,
      tls: { ca: server.caPem },
      connectTimeout,
      ...ONE_SHOT,
    });
    const outcome = await tryConnect(redis);
    expect(outcome.connected).toBe(false);
    expect(outcome.errors).toEqual([
      expect.objectContaining({ code: 'ETIMEDOUT', syscall: 'connect', message: 'connect ETIMEDOUT' }),
    ]);
    expect(outcome.ms).toBeGreaterThanOrEqual(connectTimeout - 5);
    expect(outcome.ms).toBeLessThan(connectTimeout + 2_000);
  });

  // The TLS port resets a connection whose first bytes are not a TLS handshake; ioredis sees it while
  // writing its first command or reading the answer, whichever comes first.
  it('resets a plain client on the TLS port', async () => {
    const redis = client({ host: '127.0.0.1', port: server.tlsPort, ...ONE_SHOT });
    const outcome = await tryConnect(redis);
    expect(outcome.connected).toBe(false);
    expect(outcome.errors).toEqual([
      expect.objectContaining({ code: 'ECONNRESET', message: expect.stringMatching(/^(read|write) ECONNRESET$/) }),
    ]);
  });
});
