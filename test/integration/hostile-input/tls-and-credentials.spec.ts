// Hostile input: the connection itself. `rediss://` against a redis-server that serves TLS with a CA
// this file makes (test/support/tls-redis.ts) caches; what no reconnection will change fails
// `app.init()` with a RedisCacheConfigError saying what to fix, and promptly: a certificate signed by
// a CA the client does not trust, TLS aimed at a port that speaks plain text, credentials Redis
// refuses, a database the server does not have. A Redis that is down at boot is not one of them: the
// app starts without the cache. No password ever shows in an error or a log line (the Nest logger,
// and the console, captured).
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { Injectable, type INestApplication, type LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Redis, type RedisOptions } from 'ioredis';
import { CacheService, RedisCacheModule, type RedisConnectionOption } from 'nestjs-redis-cache';
import { freePort, startLocalRedis, type LocalRedisServer } from '../../../tools/local-redis-server.mjs';
import { scanEntryKeys, scanKeys } from '../../support/redis-keys.js';
import { initError, uniqueNamespace } from '../../support/test-app.js';
import { startTlsRedis, type TlsRedis } from '../../support/tls-redis.js';
import type { TlsUrlWorkerReport } from '../../support/tls-url-worker.js';
import { CONNECT_WAIT_MS } from '../../../lib/redis-backend.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const WORKER_JS = join(ROOT, '.tmp/tls-url-worker/test/support/tls-url-worker.js');

/** "Promptly": well within the connect wait, on a loaded machine. */
const PROMPT_MS = 1_500;
/** TLS to a plain-text port: the connect wait, then a probe of the port (at most 500 ms), and margin. */
const PLAIN_TEXT_DETECTED_MS = 3_500;

@Injectable()
class Reports {
  loads = 0;
  async load(): Promise<string> {
    return `report ${++this.loads}`;
  }
}

/** Every line the app logged, and everything printed to the console meanwhile, one string each. */
class CapturedLogs implements LoggerService {
  readonly lines: string[] = [];
  private readonly record =
    (level: string) =>
    (...args: unknown[]) =>
      this.lines.push(`${level} ${args.map(show).join(' ')}`);
  log = this.record('log');
  error = this.record('error');
  warn = this.record('warn');
  debug = this.record('debug');
  verbose = this.record('verbose');
  fatal = this.record('fatal');
}

function show(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}\n${value.stack ?? ''}`;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A password no other text contains: it must show nowhere. */
const secret = (label: string) => `S3cret-${label}-${Math.random().toString(36).slice(2)}`;

describe('TLS and credentials at bootstrap', () => {
  jest.setTimeout(20_000);
  let tls: TlsRedis;
  let plain: LocalRedisServer;
  let logs: CapturedLogs;
  const consoleLines: string[] = [];
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    [tls, plain] = await Promise.all([startTlsRedis(), startLocalRedis()]);
  });
  afterAll(async () => {
    await Promise.all([tls?.stop(), plain?.stop()]);
  });
  beforeEach(() => {
    logs = new CapturedLogs();
    consoleLines.length = 0;
    for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        consoleLines.push(`console.${method} ${args.map(show).join(' ')}`);
      });
    }
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    jest.restoreAllMocks();
  });

  /** The namespace of the app `build` made last. */
  let namespace: string;

  /** The app, not initialised yet, on `redis`, logging to `logs`. */
  async function build(redis: RedisConnectionOption): Promise<INestApplication> {
    namespace = uniqueNamespace('tls');
    const moduleRef = await Test.createTestingModule({
      imports: [RedisCacheModule.forRoot({ redis, namespace })],
      providers: [Reports],
    }).compile();
    return moduleRef.createNestApplication({ logger: logs });
  }

  /** The app on `redis`, initialised (it must boot). */
  async function boot(redis: RedisConnectionOption): Promise<INestApplication> {
    const app = await build(redis);
    apps.push(app);
    await app.init();
    return app;
  }

  /** app.init()'s RedisCacheConfigError message, and how long app.init() took to reject. */
  async function bootFailure(redis: RedisConnectionOption): Promise<{ message: string; ms: number }> {
    const app = await build(redis);
    const started = performance.now();
    const message = await initError(app);
    return { message, ms: performance.now() - started };
  }

  /** Caches through `app`: a miss, then a hit. */
  async function expectCaching(app: INestApplication): Promise<void> {
    const cache = app.get(CacheService);
    const reports = app.get(Reports);
    expect(await cache.getOrSet('daily', () => reports.load())).toBe('report 1');
    expect(await cache.getOrSet('daily', () => reports.load())).toBe('report 1');
    expect(reports.loads).toBe(1);
    expect(cache.stats()).toMatchObject({ misses: 1, hits: 1, errors: 0 });
  }

  /** Everything logged or printed: none of it may contain `password`. */
  function expectNowhere(password: string): void {
    for (const line of [...logs.lines, ...consoleLines]) expect(line).not.toContain(password);
  }

  describe('TLS', () => {
    it('caches over TLS when the client is given the CA (tls: { ca })', async () => {
      const app = await boot({ host: '127.0.0.1', port: tls.tlsPort, tls: { ca: tls.caPem } });
      await expectCaching(app);
      expect((app.get(CacheService).client as Redis).stream).toBeInstanceOf(TLSSocket);
    });

    // Node's own errors (a TLS error) are not `instanceof Error` inside jest's test context, which has
    // globals of its own: the bootstrap recognises them by their shape, so this holds here as in the
    // plain Node process below.
    it('a certificate signed by a CA the client does not trust fails app.init(), naming the certificate, promptly', async () => {
      const { message, ms } = await bootFailure({
        host: '127.0.0.1',
        port: tls.tlsPort,
        tls: { ca: tls.otherCaPem },
      });
      expect(message).toMatch(/^RedisCacheModule cannot use its Redis: the server's TLS certificate was refused/);
      expect(message).toContain('SELF_SIGNED_CERT_IN_CHAIN');
      expect(message).toMatch(/\(tls: \{ ca \}\)/);
      expect(ms).toBeLessThan(PROMPT_MS);
    });

    describe('with nothing but a rediss:// URL, in a child process (plain Node: one realm)', () => {
      const run = promisify(execFile);

      beforeAll(async () => {
        // Compile the worker (and the lib/ it imports) for plain node; incremental, so reruns are quick.
        const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
        await run(process.execPath, [tsc, '-p', 'test/support/tsconfig.tls-url-worker.json'], { cwd: ROOT }).catch(
          (error: { stdout?: string; message: string }) => {
            throw new Error(`tsc of the TLS worker failed: ${error.stdout ?? error.message}`);
          },
        );
        if (!existsSync(WORKER_JS)) throw new Error(`tsc did not write ${WORKER_JS}`);
      }, 60_000);

      /** What the worker reports for the server's rediss:// URL; `caFile` is what it trusts besides Node's CAs. */
      async function runWorker(caFile: string | undefined): Promise<TlsUrlWorkerReport> {
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          TLS_WORKER_REDIS_URL: tls.tlsUrl,
          TLS_WORKER_NAMESPACE: uniqueNamespace('tls-url'),
        };
        delete env.NODE_EXTRA_CA_CERTS;
        if (caFile) env.NODE_EXTRA_CA_CERTS = caFile;
        const { stdout } = await run(process.execPath, [WORKER_JS], { cwd: ROOT, timeout: 15_000, env });
        return JSON.parse(stdout.trim()) as TlsUrlWorkerReport;
      }

      it('caches when Node trusts the CA (NODE_EXTRA_CA_CERTS)', async () => {
        expect(await runWorker(tls.caFile)).toEqual({
          values: [1, 1],
          loads: 1,
          hits: 1,
          misses: 1,
          errors: 0,
          encrypted: true,
        });
      });

      it('fails the bootstrap, naming the certificate, promptly, when Node does not trust it', async () => {
        const report = await runWorker(undefined);
        expect(report).toEqual({
          bootError: {
            name: 'RedisCacheConfigError',
            message: expect.stringMatching(
              /^RedisCacheModule cannot use its Redis: the server's TLS certificate was refused \(SELF_SIGNED_CERT_IN_CHAIN: .*\); give the client the CA that signed it \(tls: \{ ca \}\)$/,
            ),
          },
          ms: expect.any(Number),
        });
        expect((report as { ms: number }).ms).toBeLessThan(PROMPT_MS);
      });
    });

    it.each([
      ['a rediss:// URL', () => `rediss://127.0.0.1:${plain.port}`],
      ['tls options', () => ({ host: '127.0.0.1', port: plain.port, tls: { ca: tls.caPem } })],
    ])('%s aimed at a port that speaks plain text fails app.init(), saying so, within 3 s', async (_, redis) => {
      const { message, ms } = await bootFailure(redis());
      expect(message).toBe(
        `RedisCacheModule cannot use its Redis: 127.0.0.1:${plain.port} answers in plain text, not TLS; ` +
          'use redis:// for it, or the port where it serves TLS',
      );
      expect(ms).toBeGreaterThanOrEqual(CONNECT_WAIT_MS - 50);
      expect(ms).toBeLessThan(PLAIN_TEXT_DETECTED_MS);
    });
  });

  describe('credentials', () => {
    const user = `cache-${process.pid}`;
    const right = secret('right');
    let admin: Redis;

    beforeAll(async () => {
      admin = new Redis(plain.url, { maxRetriesPerRequest: 1 });
      await admin.call('ACL', 'SETUSER', user, 'on', `>${right}`, '~*', '&*', '+@all');
    });
    afterAll(async () => {
      await admin.call('ACL', 'DELUSER', user);
      admin.disconnect();
    });

    it('the right password caches (the user exists, so the refusals below are of the password)', async () => {
      await expectCaching(await boot(`redis://${user}:${right}@127.0.0.1:${plain.port}`));
      expectNowhere(right);
    });

    const refused =
      /^RedisCacheModule cannot use its Redis: Redis refused the credentials \(.+\); check the user name and password$/;

    it.each<[string, (password: string) => RedisConnectionOption]>([
      ['in a URL', (password) => `redis://${user}:${password}@127.0.0.1:${plain.port}`],
      ['in ioredis options', (password) => ({ host: '127.0.0.1', port: plain.port, username: user, password })],
      [
        'of a user that does not exist',
        (password) => `redis://nobody-${process.pid}:${password}@127.0.0.1:${plain.port}`,
      ],
      [
        'with characters a URL escapes',
        (password) => `redis://${user}:${encodeURIComponent(`${password}/@:`)}@127.0.0.1:${plain.port}`,
      ],
    ])('a wrong password %s fails app.init(), and shows nowhere', async (_, redis) => {
      const wrong = secret('wrong');
      const { message, ms } = await bootFailure(redis(wrong));
      expect(message).toMatch(refused);
      expect(message).toMatch(/WRONGPASS/);
      expect(message).not.toContain(wrong);
      expect(ms).toBeLessThan(PROMPT_MS);
      // The refusal was logged too (the outage warning), without the password.
      expect(logs.lines).toContainEqual(expect.stringMatching(/^warn Redis cache unavailable \(WRONGPASS /));
      expectNowhere(wrong);
      expectNowhere(right);
    });

    it('a wrong password over TLS fails app.init() too, and shows nowhere', async () => {
      const tlsAdmin = new Redis(tls.plainUrl, { maxRetriesPerRequest: 1 });
      await tlsAdmin.call('ACL', 'SETUSER', user, 'on', `>${right}`, '~*', '&*', '+@all');
      try {
        const wrong = secret('wrong');
        const options: RedisOptions = { port: tls.tlsPort, username: user, password: wrong, tls: { ca: tls.caPem } };
        const { message } = await bootFailure({ host: '127.0.0.1', ...options });
        expect(message).toMatch(refused);
        expectNowhere(wrong);
      } finally {
        await tlsAdmin.call('ACL', 'DELUSER', user);
        tlsAdmin.disconnect();
      }
    });

    describe('a server with requirepass (the default user has a password)', () => {
      let locked: LocalRedisServer;
      const password = secret('requirepass');

      beforeAll(async () => {
        locked = await startLocalRedis();
        const setup = new Redis(locked.url, { maxRetriesPerRequest: 1 });
        await setup.config('SET', 'requirepass', password);
        setup.disconnect();
      });
      afterAll(() => locked?.stop());

      it('the password alone (redis://:password@) caches', async () => {
        await expectCaching(await boot(`redis://:${password}@127.0.0.1:${locked.port}`));
        expectNowhere(password);
      });

      it('a wrong one fails app.init(), and shows nowhere', async () => {
        const wrong = secret('wrong');
        const { message } = await bootFailure(`redis://:${wrong}@127.0.0.1:${locked.port}`);
        expect(message).toMatch(refused);
        expectNowhere(wrong);
        expectNowhere(password);
      });

      it('none at all fails app.init() (NOAUTH)', async () => {
        const { message, ms } = await bootFailure(locked.url);
        expect(message).toMatch(refused);
        expect(message).toMatch(/NOAUTH/);
        expect(ms).toBeLessThan(PROMPT_MS);
      });
    });

    it('a URL the module refuses (not redis://) shows no password in the error', async () => {
      for (const password of [secret('a'), `${secret('b')}@x`, encodeURIComponent(`${secret('c')}/x y`)]) {
        const message = await initError(await build(`http://${user}:${password}@127.0.0.1:${plain.port}`));
        expect(message).toMatch(
          /redis URL must start with redis:\/\/ or rediss:\/\/ \(got 'http:\/\/cache-\d+:\*\*\*@/,
        );
        expect(message).not.toContain(password.slice(0, 20));
        expectNowhere(password.slice(0, 20));
      }
    });

    it("a URL the module refuses shows no password in the error, even one with '/' or a space", async () => {
      for (const password of [`${secret('d')}/x`, `${secret('e')} x`]) {
        const message = await initError(await build(`http://${user}:${password}@127.0.0.1:${plain.port}`));
        expect(message).not.toContain(password.slice(0, 20));
      }
    });
  });

  describe('databases', () => {
    it('a database index the server does not have (/99) fails app.init(), naming the database', async () => {
      const { message, ms } = await bootFailure(`${plain.url}/99`);
      expect(message).toMatch(
        /^RedisCacheModule cannot use database 99: Redis has no such database \(ERR DB index is out of range\)/,
      );
      expect(message).toMatch(/'databases' setting/);
      expect(ms).toBeLessThan(PROMPT_MS);
    });

    it('one it has (/3) caches there', async () => {
      const app = await boot(`${plain.url}/3`);
      await expectCaching(app);
      const db3 = new Redis(`${plain.url}/3`);
      try {
        // The one entry the two calls stored, and nothing outside the app's namespace (its own keys besides).
        expect(await scanEntryKeys(db3, '*')).toEqual([`${namespace}:daily`]);
        expect((await scanKeys(db3, '*')).filter((key) => !key.startsWith(`${namespace}:`))).toEqual([]);
      } finally {
        db3.disconnect();
      }
    });
  });

  describe('Redis down at boot (nothing listens on the port): the app starts without the cache', () => {
    it.each([
      ['redis://', (port: number) => `redis://127.0.0.1:${port}`],
      ['rediss://', (port: number) => `rediss://127.0.0.1:${port}`],
      ['tls options', (port: number) => ({ host: '127.0.0.1', port, tls: { ca: tls.caPem } })],
    ])('%s', async (_, redis) => {
      const port = await freePort();
      const started = performance.now();
      const app = await boot(redis(port));
      expect(performance.now() - started).toBeLessThan(CONNECT_WAIT_MS + 1_000);
      const cache = app.get(CacheService);
      const reports = app.get(Reports);
      expect(await cache.getOrSet('daily', () => reports.load())).toBe('report 1');
      expect(await cache.getOrSet('daily', () => reports.load())).toBe('report 2');
      expect(logs.lines.some((line) => /^warn Redis cache unavailable/.test(line))).toBe(true);
    });
  });
});
