// The keyspace audit (auditKeyspace, the `nestjs-redis-cache audit` command run in-process) and the
// startup advisor, on a Redis of this spec's own (a 3-primary cluster in the cluster project): the
// tests change its maxmemory and policy with CONFIG SET and reset its statistics, which the shared
// test Redis must never see. Small data, known exactly: 200 + 100 keys with known TTLs under
// `cache:`, 30 without a TTL under `legacy:`.
import { jest } from '@jest/globals';
import type { Cluster, Redis } from 'ioredis';
import { freePort } from '../../tools/local-redis-server.mjs';
import { auditKeyspace } from '../../lib/audit/audit-keyspace.js';
import type { KeyspaceAuditReport } from '../../lib/audit/audit-report.js';
import { AUDIT_JSON_SCHEMA } from '../../lib/audit/json-report.js';
import { adviseAtStartup } from '../../lib/audit/startup-advisor.js';
import type { CliIo } from '../../lib/cli/cli-io.js';
import { runCli } from '../../lib/cli/run-cli.js';
import { AUDIT_USAGE, MAIN_USAGE } from '../../lib/cli/usage.js';
import { CacheService } from '../../lib/cache.service.js';
import { LogRecorder } from '../support/fault-helpers.js';
import { watchCommands } from '../support/monitor.js';
import { waitFor } from '../support/load-helpers.js';
import { OWN_REDIS_TEST_TIMEOUT_MS, startOwnRedis, type OwnRedis } from '../support/own-redis.js';
import { isCluster, primariesOf } from '../support/redis-topology.js';
import { createTestApp, standaloneOnly, testTopology, uniqueNamespace } from '../support/test-app.js';

jest.setTimeout(OWN_REDIS_TEST_TIMEOUT_MS);

const USERS = 200;
const FEEDS = 100;
const LEGACY = 30;
/** `cache:user:i` lives 600 s + i s: min 600, p50 (nearest rank, 100th of 200) 699, p90 779, max 799. */
const userTtlMs = (i: number) => 600_000 + i * 1_000;
const FEED_TTL_MS = 3_600_000;

let server: OwnRedis;
let admin: Redis;

beforeAll(async () => {
  server = await startOwnRedis();
  admin = server.client();
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});
beforeEach(async () => {
  for (const node of await primaries()) {
    await node.flushall();
    await node.config('RESETSTAT');
  }
  await configSet('maxmemory', '0');
  await configSet('maxmemory-policy', 'noeviction');
});

/** The servers holding keys: the one server, or each primary. */
async function primaries(): Promise<Redis[]> {
  const client = admin as Redis | Cluster;
  return isCluster(client) ? primariesOf(client) : [admin];
}

async function configSet(name: string, value: string): Promise<void> {
  for (const node of await primaries()) await node.config('SET', name, value);
}

/** Writes `[key, value, ttlMs?]` entries: one pipeline on a server, one command each on a Cluster. */
async function write(entries: ReadonlyArray<readonly [string, string, number?]>): Promise<void> {
  const set = (target: Pick<Redis, 'set'>, [key, value, ttlMs]: readonly [string, string, number?]) =>
    ttlMs === undefined ? target.set(key, value) : target.set(key, value, 'PX', ttlMs);
  if (isCluster(admin as Redis | Cluster)) {
    await Promise.all(entries.map((entry) => set(admin, entry)));
    return;
  }
  const pipeline = admin.pipeline();
  for (const entry of entries) void set(pipeline as unknown as Redis, entry);
  await pipeline.exec();
}

/** The spec's keyspace; resolves with when it was written (TTLs count down from there). */
async function seed({ legacy = true } = {}): Promise<number> {
  const writtenAt = performance.now();
  await write([
    ...Array.from({ length: USERS }, (_, i) => [`cache:user:${i}`, 'u'.repeat(100), userTtlMs(i)] as const),
    ...Array.from({ length: FEEDS }, (_, i) => [`cache:feed:${i}`, 'f'.repeat(1_000), FEED_TTL_MS] as const),
    ...(legacy ? Array.from({ length: LEGACY }, (_, i) => [`legacy:${i}`, 'l'] as const) : []),
  ]);
  return writtenAt;
}

function prefix(report: KeyspaceAuditReport, name: string) {
  const found = report.prefixes.find((entry) => entry.prefix === name);
  if (!found) throw new Error(`no prefix ${name} in ${report.prefixes.map((entry) => entry.prefix).join(', ')}`);
  return found;
}

/** `seconds` is `expected` counted down by at most `elapsedMs` (and a millisecond of rounding). */
function expectCountedDown(seconds: number, expected: number, elapsedMs: number): void {
  expect(seconds).toBeLessThanOrEqual(expected);
  expect(seconds).toBeGreaterThanOrEqual(expected - elapsedMs / 1_000 - 0.001);
}

describe('auditKeyspace', () => {
  it('counts keys, keys without a TTL, bytes and the TTL spread per prefix, exactly', async () => {
    const writtenAt = await seed();
    const report = await auditKeyspace(admin);
    const elapsedMs = performance.now() - writtenAt;

    expect(report.prefixes.map((entry) => [entry.prefix, entry.keys, entry.withoutTtl])).toEqual([
      ['cache:feed', FEEDS, 0], // most bytes first
      ['cache:user', USERS, 0],
      ['legacy', LEGACY, LEGACY],
    ]);
    expect(report.totals).toMatchObject({ keys: 330, withoutTtl: 30, prefixes: 3, bytesEstimated: false });
    expect(report.prefixesTruncated).toBe(false);
    expect(report.scope).toEqual({
      nodes: (await primaries()).map((node) => `${node.options.host}:${node.options.port}`),
      match: '*',
      separator: ':',
      depth: 2,
      sample: 1000,
    });

    const users = prefix(report, 'cache:user');
    expectCountedDown(users.ttl!.minSeconds, 600, elapsedMs);
    expectCountedDown(users.ttl!.p50Seconds, 699, elapsedMs);
    expectCountedDown(users.ttl!.p90Seconds, 779, elapsedMs);
    expectCountedDown(users.ttl!.maxSeconds, 799, elapsedMs);
    expect(users.ttl!.sampled).toBe(false);
    const feeds = prefix(report, 'cache:feed');
    expectCountedDown(feeds.ttl!.minSeconds, 3_600, elapsedMs);
    expectCountedDown(feeds.ttl!.maxSeconds, 3_600, elapsedMs);
    expect(prefix(report, 'legacy').ttl).toBeNull();

    // Under --sample every key is measured: the bytes are MEMORY USAGE's own sum.
    let legacyBytes = 0;
    for (let i = 0; i < LEGACY; i++) legacyBytes += (await admin.memory('USAGE', `legacy:${i}`)) ?? 0;
    expect(prefix(report, 'legacy')).toMatchObject({ bytes: legacyBytes, bytesEstimated: false, measuredKeys: 30 });
    expect(feeds.bytes).toBeGreaterThan(FEEDS * 1_000);
    expect(report.totals.bytes).toBe(report.prefixes.reduce((sum, entry) => sum + entry.bytes!, 0));

    // The server as configured by beforeEach: no limit, noeviction.
    expect(report.server).toMatchObject({ maxmemoryBytes: 0, maxmemoryPolicy: 'noeviction', configSource: 'config' });
    expect(report.redFlags.map((flag) => flag.code)).toEqual(['no-maxmemory', 'noeviction', 'keys-without-ttl']);
    expect(report.redFlags[2]).toMatchObject({
      message: '30 key(s) have no TTL and live until deleted: legacy (30).',
      prefixes: ['legacy'],
    });
  });

  it('measures a sample past `sample` keys of a prefix and extrapolates its bytes', async () => {
    await seed();
    const exact = await auditKeyspace(admin);
    const sampled = await auditKeyspace(admin, { sample: 20 });
    for (const name of ['cache:user', 'cache:feed']) {
      const { bytes, bytesEstimated, measuredKeys, keys } = prefix(sampled, name);
      expect(bytesEstimated).toBe(true);
      expect(measuredKeys).toBeGreaterThanOrEqual(20);
      expect(measuredKeys).toBeLessThan(keys);
      // Values of one size, keys of a few lengths: the estimate is within a few percent.
      expect(Math.abs(bytes! - prefix(exact, name).bytes!) / prefix(exact, name).bytes!).toBeLessThan(0.05);
    }
    expect(sampled.totals.bytesEstimated).toBe(true);
    // Counts are never sampled.
    expect(sampled.totals).toMatchObject({ keys: 330, withoutTtl: 30 });
  });

  it('narrows the scan with match and regroups with depth and separator', async () => {
    await seed();
    const cacheOnly = await auditKeyspace(admin, { match: 'cache:*', depth: 1 });
    expect(cacheOnly.prefixes.map((entry) => [entry.prefix, entry.keys])).toEqual([['cache', 300]]);
    expect(cacheOnly.redFlags.map((flag) => flag.code)).toEqual(['no-maxmemory', 'noeviction']);
    const byDash = await auditKeyspace(admin, { match: 'legacy:*', separator: '-' });
    // No '-' in the key names: each key is its own prefix.
    expect(byDash.prefixes).toHaveLength(LEGACY);
  });

  it('reports progress against DBSIZE after every batch', async () => {
    await seed();
    const updates: Array<{ scanned: number; total: number | undefined }> = [];
    await auditKeyspace(admin, { count: 50, onProgress: (update) => updates.push({ ...update }) });
    expect(updates[0]).toEqual({ scanned: 0, total: 330 });
    expect(updates.at(-1)).toEqual({ scanned: 330, total: 330 });
    expect(updates.length).toBeGreaterThan(3); // COUNT 50: several batches
    const filtered: Array<number | undefined> = [];
    await auditKeyspace(admin, { match: 'cache:*', onProgress: ({ total }) => filtered.push(total) });
    expect(new Set(filtered)).toEqual(new Set([undefined]));
  });

  it('raises the red flags the server configuration calls for, and none on a healthy cache', async () => {
    await seed({ legacy: false });
    await configSet('maxmemory', '100mb');
    await configSet('maxmemory-policy', 'allkeys-lru');
    const healthy = await auditKeyspace(admin);
    expect(healthy.redFlags).toEqual([]);
    expect(healthy.server).toMatchObject({ maxmemoryPolicy: 'allkeys-lru', hitRate: null });
    expect(healthy.nodes.every((node) => node.figures.maxmemoryBytes === 100 * 1024 * 1024)).toBe(true);

    await write(Array.from({ length: 3 }, (_, i) => [`jobs:${i}`, 'j'] as const));
    await configSet('maxmemory-policy', 'volatile-lru');
    const volatile = await auditKeyspace(admin);
    expect(volatile.redFlags.map((flag) => flag.code)).toEqual([
      'keys-without-ttl',
      'volatile-policy-with-keys-without-ttl',
    ]);
    expect(volatile.redFlags[1]).toMatchObject({ prefixes: ['jobs'] });
  });

  it('reads the hit rate from INFO before its own lookups, and flags a low one', async () => {
    await seed({ legacy: false });
    await configSet('maxmemory', '100mb');
    await configSet('maxmemory-policy', 'allkeys-lfu');
    for (const node of await primaries()) await node.config('RESETSTAT');
    // 250 hits and 750 misses: 1,000 lookups, a 25% hit rate.
    await Promise.all([
      ...Array.from({ length: 250 }, (_, i) => admin.get(`cache:user:${i % USERS}`)),
      ...Array.from({ length: 750 }, (_, i) => admin.get(`cache:nothing:${i}`)),
    ]);
    const report = await auditKeyspace(admin);
    expect(report.server).toMatchObject({ keyspaceHits: 250, keyspaceMisses: 750, hitRate: 0.25 });
    expect(report.redFlags.map((flag) => flag.code)).toEqual(['low-hit-rate']);
    expect(report.redFlags[0]!.message).toBe(
      'Keyspace hit rate is 25.0% (250 hits, 750 misses since the server started), below 80%.',
    );
  });

  standaloneOnly('ACL users are per server; a Cluster client also needs CLUSTER commands')(
    'falls back to INFO when CONFIG GET is refused, and leaves bytes unknown when MEMORY USAGE is',
    async () => {
      await seed();
      await configSet('maxmemory', '64mb');
      await admin.call('ACL', 'SETUSER', 'auditor', 'reset', 'on', '>pw', '~*', '+@all', '-config', '-memory');
      const auditor = server.client({ username: 'auditor', password: 'pw' });
      try {
        const report = await auditKeyspace(auditor);
        expect(report.server).toMatchObject({
          maxmemoryBytes: 64 * 1024 * 1024,
          maxmemoryPolicy: 'noeviction',
          configSource: 'info',
        });
        expect(report.memoryUsageRefused).toMatch(/^NOPERM/);
        expect(report.prefixes.every((entry) => entry.bytes === null)).toBe(true);
        expect(report.totals).toMatchObject({ keys: 330, withoutTtl: 30, bytes: null });
        expect(report.redFlags.map((flag) => flag.code)).toEqual(['noeviction', 'keys-without-ttl']);
      } finally {
        auditor.disconnect();
        await admin.call('ACL', 'DELUSER', 'auditor');
      }
    },
  );

  it('audits only what a client with a keyPrefix can reach', async () => {
    await seed();
    const prefixed = server.client({ keyPrefix: 'cache:' });
    try {
      const report = await auditKeyspace(prefixed);
      expect(report.scope.match).toBe('cache:*');
      expect(report.prefixes.map((entry) => [entry.prefix, entry.keys, entry.ttl !== null])).toEqual([
        ['cache:feed', FEEDS, true],
        ['cache:user', USERS, true],
      ]);
    } finally {
      prefixed.disconnect();
    }
  });
});

/** Runs the CLI in-process with captured streams. */
async function cli(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text), isTTY: false },
    env,
  };
  const code = await runCli(argv, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

/** `--url` (and `--cluster`) of the spec's Redis. */
function target(): string[] {
  if (typeof server.connection === 'string') return ['--url', server.connection];
  const [seedNode] = server.connection.cluster.nodes;
  return ['--url', `redis://${seedNode!.host}:${seedNode!.port}`, '--cluster'];
}

describe('nestjs-redis-cache audit (runCli)', () => {
  it('prints one JSON document with --json, and exits 1 on red flags', async () => {
    await seed();
    const { code, stdout, stderr } = await cli(['audit', ...target(), '--json']);
    expect({ code, stderr }).toEqual({ code: 1, stderr: '' });
    const document = JSON.parse(stdout) as KeyspaceAuditReport & { schema: string };
    expect(document.schema).toBe(AUDIT_JSON_SCHEMA);
    expect(document.totals).toMatchObject({ keys: 330, withoutTtl: 30, prefixes: 3 });
    expect(document.redFlags.map((flag) => flag.code)).toEqual(['no-maxmemory', 'noeviction', 'keys-without-ttl']);
  });

  it('prints the table for people, with the prefix options, and exits 0 when all is well', async () => {
    await seed({ legacy: false });
    await configSet('maxmemory', '100mb');
    await configSet('maxmemory-policy', 'allkeys-lru');
    const { code, stdout, stderr } = await cli(['audit', ...target(), '--depth', '1', '--sample', '5']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const lines = stdout.split('\n');
    expect(lines[1]).toMatch(/^300 key\(s\) in 1 prefix\(es\), audited in /);
    expect(lines[3]).toMatch(/^PREFIX +KEYS +MEMORY +NO TTL +TTL MIN +TTL P50 +TTL P90 +TTL MAX$/);
    // min: cache:user:0's 600 s; p50: the 150th TTL, cache:user:149's 749 s; p90 and max: a feed's hour.
    expect(lines[4]).toMatch(/^cache +300 +~\d+\.\d KiB +0 +9m 59s +12m 2[89]s +59m 59s +59m 59s$/);
    expect(lines.at(-2)).toBe('No red flags.');
  });

  it('draws the progress bar on stderr with --progress, and only the report on stdout', async () => {
    await seed();
    const { stdout, stderr } = await cli(['audit', ...target(), '--progress', '--json']);
    expect(stderr.startsWith('\r[------------------------]   0%  0 / 330 keys')).toBe(true);
    expect(stderr.endsWith('\r\x1b[K')).toBe(true);
    expect(() => JSON.parse(stdout) as unknown).not.toThrow();
    expect((await cli(['audit', ...target(), '--progress', '--no-progress', '--json'])).stderr).toBe('');
  });

  it('exits 2 with one clear line when Redis is not there, and never a stack', async () => {
    const port = await freePort();
    const { code, stdout, stderr } = await cli(['audit', '--json'], {
      REDIS_URL: `redis://user:secret@127.0.0.1:${port}`,
    });
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toBe(
      `nestjs-redis-cache: cannot connect to redis://user:***@127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    );
  });

  standaloneOnly('ACL users are per server')('exits 2 with what Redis said when it refuses the audit', async () => {
    await admin.call('ACL', 'SETUSER', 'no-scan', 'reset', 'on', '>s3cret', '~*', '+@all', '-scan');
    try {
      const url = new URL(server.connection as string);
      url.username = 'no-scan';
      url.password = 's3cret';
      const { code, stdout, stderr } = await cli(['audit', '--url', url.toString()]);
      expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
      expect(stderr).toMatch(/^nestjs-redis-cache: the audit failed: NOPERM .*'scan'.*\n$/);
      expect(stderr).not.toContain('s3cret');
    } finally {
      await admin.call('ACL', 'DELUSER', 'no-scan');
    }
  });

  it('exits 2 with the usage for a mistake in the command line, 0 for --help', async () => {
    expect(await cli(['audit', '--help'])).toEqual({ code: 0, stdout: AUDIT_USAGE, stderr: '' });
    expect(await cli(['--help'])).toEqual({ code: 0, stdout: MAIN_USAGE, stderr: '' });
    expect(await cli([])).toEqual({ code: 2, stdout: '', stderr: MAIN_USAGE });
    expect(await cli(['audti'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `nestjs-redis-cache: unknown command 'audti'\n\n${MAIN_USAGE}`,
    });
    expect(await cli(['audit', '--depth', 'two'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `nestjs-redis-cache: --depth must be a positive integer (got 'two')\n\n${AUDIT_USAGE}`,
    });
  });

  it('says when the server and --cluster disagree', async () => {
    if (testTopology() === 'cluster') {
      // A node of a Cluster audited alone: its own keys only, and a note on stderr.
      const [seedNode] = (server.connection as { cluster: { nodes: Array<{ host: string; port: number }> } }).cluster
        .nodes;
      await seed();
      const { code, stderr } = await cli(['audit', '--url', `redis://${seedNode!.host}:${seedNode!.port}`, '--json']);
      expect(code).toBe(1);
      expect(stderr).toBe(
        'Note: this server is a node of a Redis Cluster; only its own keys were audited. Add --cluster to audit every primary.\n',
      );
      return;
    }
    const { code, stderr } = await cli(['audit', '--url', server.connection as string, '--cluster']);
    expect(code).toBe(2);
    expect(stderr).toBe(
      `nestjs-redis-cache: cannot connect to ${server.connection as string}: ERR This instance has cluster support ` +
        'disabled (it is a single server: leave out --cluster)\n',
    );
  });
});

describe('the startup advisor', () => {
  /** Runs the advisor on the spec's Redis for `namespace` and returns its warnings. */
  async function advise(checks?: Parameters<typeof adviseAtStartup>[1]['checks'], namespace = 'shop') {
    const warnings: string[] = [];
    await adviseAtStartup(admin, { namespace, checks }, { warn: (message) => warnings.push(message) });
    return warnings;
  }

  /** Keys of the namespace `shop`: 20 with a TTL, and `persistent` without. */
  async function seedShop(persistent: number): Promise<void> {
    await write([
      ...Array.from({ length: 20 }, (_, i) => [`shop:item:${i}`, 'i', 60_000] as const),
      ...Array.from({ length: persistent }, (_, i) => [`shop:native:${i}`, 'n'] as const),
      ['other:forever', 'not the namespace'], // outside the namespace: never sampled
    ]);
  }

  it('warns about no maxmemory, noeviction and keys of the namespace without a TTL', async () => {
    await seedShop(2);
    const warnings = await advise();
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/^Redis has no maxmemory set: the cache \(namespace 'shop'\) grows /);
    expect(warnings[1]).toMatch(/^Redis's maxmemory-policy is noeviction: /);
    expect(warnings[2]).toMatch(/^2 of 22 keys sampled under 'shop:' have no TTL \(shop:native:\d, shop:native:\d\): /);
  });

  it('warns about a volatile-* policy while keys of the namespace have no TTL', async () => {
    await seedShop(1);
    await configSet('maxmemory', '100mb');
    await configSet('maxmemory-policy', 'volatile-lfu');
    const warnings = await advise({ keysWithoutTtl: false });
    expect(warnings).toEqual([
      expect.stringMatching(
        /^Redis's maxmemory-policy is volatile-lfu, which evicts only keys with a TTL, and 1 of 21 keys sampled under 'shop:' have none \(shop:native:0\)/,
      ),
    ]);
  });

  it('says nothing when all is well, nor of checks switched off', async () => {
    await seedShop(0);
    await configSet('maxmemory', '100mb');
    await configSet('maxmemory-policy', 'allkeys-lru');
    expect(await advise()).toEqual([]);

    await seedShop(3);
    await configSet('maxmemory', '0');
    await configSet('maxmemory-policy', 'noeviction');
    expect(await advise(false)).toEqual([]);
    expect(await advise({ maxmemory: false, evictionPolicy: false, keysWithoutTtl: false })).toEqual([]);
    expect((await advise({ maxmemory: false, keysWithoutTtl: false })).map((warning) => warning.slice(0, 40))).toEqual([
      "Redis's maxmemory-policy is noeviction: ",
    ]);
  });

  it('samples at most 1,000 keys of the namespace', async () => {
    await write(Array.from({ length: 1_500 }, (_, i) => [`bulk:${i}`, 'b'] as const));
    const [, , keys] = await advise(undefined, 'bulk');
    expect(keys).toMatch(
      /^1000 of 1000 keys sampled under 'bulk:' have no TTL \(e\.g\. bulk:\d+, bulk:\d+, bulk:\d+\): /,
    );
  });

  it('does nothing on a client that is not connected', async () => {
    const idle = server.client({ lazyConnect: true });
    const warnings: string[] = [];
    await adviseAtStartup(idle, { namespace: 'shop', checks: true }, { warn: (message) => warnings.push(message) });
    expect(warnings).toEqual([]);
    expect(idle.status).toBe('wait');
    idle.disconnect();
  });

  standaloneOnly('ACL users are per server')(
    'uses INFO, not CONFIG (refused to least-privilege users), and is silent where INFO and SCAN are refused',
    async () => {
      await seedShop(1);
      await admin.call('ACL', 'SETUSER', 'no-config', 'reset', 'on', '>pw', '~*', '+@all', '-config');
      await admin.call('ACL', 'SETUSER', 'blind', 'reset', 'on', '>pw', '~*', '+@all', '-info', '-scan');
      const noConfig = server.client({ username: 'no-config', password: 'pw' });
      const blind = server.client({ username: 'blind', password: 'pw', enableReadyCheck: false });
      try {
        const warnings = (client: Redis) => {
          const seen: string[] = [];
          return adviseAtStartup(client, { namespace: 'shop', checks: true }, { warn: (m) => seen.push(m) }).then(
            () => seen,
          );
        };
        await noConfig.ping();
        await blind.ping();
        expect(await warnings(noConfig)).toHaveLength(3);
        expect(await warnings(blind)).toEqual([]);
      } finally {
        noConfig.disconnect();
        blind.disconnect();
        await admin.call('ACL', 'DELUSER', 'no-config', 'blind');
      }
    },
  );

  it('runs on a connection of its own: none of its commands go through the cache connection', async () => {
    const advised = new LogRecorder();
    const namespace = uniqueNamespace('own-connection');
    const watch = await watchCommands(admin);
    let app: Awaited<ReturnType<typeof createTestApp>> | undefined;
    let cachePorts: number[];
    try {
      app = await createTestApp({
        cache: { redis: server.connection, namespace, startupAdvisor: true },
        logger: advised,
      });
      const client = app.get(CacheService).client;
      const connections = isCluster(client) ? await primariesOf(client) : [client as Redis];
      // A Cluster opens a node's connection when it first sends it a command.
      await Promise.all(connections.map((connection) => connection.ping()));
      cachePorts = connections.map((connection) => connection.stream.localPort!);
      await waitFor('the advisor to warn', () => advised.lines.some((line) => line.context === 'RedisCacheAdvisor'));
    } finally {
      await watch.stop();
      await app?.close();
    }
    // The namespace's sample is the advisor's alone: SCAN MATCH `${namespace}:*`.
    const scans = watch.seen.filter(({ args }) => args[0]?.toLowerCase() === 'scan' && args.includes(`${namespace}:*`));
    expect(scans.length).toBeGreaterThanOrEqual(1);
    const sources = new Set(scans.map(({ source }) => Number(source.split(':').at(-1))));
    for (const port of cachePorts) expect(sources.has(port)).toBe(false);
  });

  it('runs once after the module connected, logging as RedisCacheAdvisor, unless startupAdvisor is false', async () => {
    const quiet = new LogRecorder();
    const advised = new LogRecorder();
    const off = await createTestApp({
      cache: { redis: server.connection, namespace: uniqueNamespace('quiet'), startupAdvisor: false },
      logger: quiet,
    });
    const namespace = uniqueNamespace('advised');
    // The module's default (true); createTestApp turns it off unless told.
    const on = await createTestApp({
      cache: { redis: server.connection, namespace, startupAdvisor: true },
      logger: advised,
    });
    try {
      const advice = () => advised.lines.filter((line) => line.context === 'RedisCacheAdvisor');
      await waitFor('the advisor to warn', () => advice().length === 2);
      expect(advice().map((line) => [line.level, line.message.split(':')[0]])).toEqual([
        ['warn', 'Redis has no maxmemory set'],
        ['warn', "Redis's maxmemory-policy is noeviction"],
      ]);
      expect(advice()[0]!.message).toContain(`namespace '${namespace}'`);
      // Not among the module's own lines, which specs and users filter by the RedisCache context.
      expect(advised.cacheLines('warn')).toEqual([]);
      expect(quiet.lines.filter((line) => line.context === 'RedisCacheAdvisor')).toEqual([]);
    } finally {
      await on.close();
      await off.close();
    }
  });
});
