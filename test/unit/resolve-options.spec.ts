// Module options: defaults, unit conversion and validation with messages that name the option.
import { configError } from '../support/config-error.js';
import { resolveCacheOptions, resolveTtl } from '../../lib/options/resolve-options.js';
import { isCompressionAvailable } from '../../lib/serialization/payload-compression.js';

describe('resolveCacheOptions', () => {
  const savedUrl = process.env.REDIS_URL;
  afterEach(() => {
    if (savedUrl === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = savedUrl;
  });

  it('applies the contract defaults', () => {
    delete process.env.REDIS_URL;
    expect(resolveCacheOptions({})).toEqual({
      redis: 'redis://127.0.0.1:6379',
      namespace: 'cache',
      ttlMs: 3_600_000,
      ttlProfiles: new Map(),
      jitter: 0.1,
      nullTtlMs: 60_000,
      commandTimeoutMs: 250,
      lock: true,
      lockTtlMs: 10_000,
      lockWaitMs: 5_000,
      l1: undefined,
      freezeShared: false,
      compression: undefined,
      shardedPubSub: false,
    });
  });

  it('defaults redis to process.env.REDIS_URL', () => {
    process.env.REDIS_URL = 'redis://example.test:6390/2';
    expect(resolveCacheOptions().redis).toBe('redis://example.test:6390/2');
  });

  it('converts durations: bare numbers are seconds for TTLs and milliseconds for commandTimeout', () => {
    const config = resolveCacheOptions({
      ttl: 90,
      nullTtl: '1500ms',
      commandTimeout: 100,
      ttlProfiles: { user_profile: '24h', trending: 300 },
    });
    expect(config.ttlMs).toBe(90_000);
    expect(config.nullTtlMs).toBe(1_500);
    expect(config.commandTimeoutMs).toBe(100);
    expect(config.ttlProfiles.get('user_profile')).toBe(86_400_000);
    expect(config.ttlProfiles.get('trending')).toBe(300_000);
    expect(resolveCacheOptions({ commandTimeout: '1s' }).commandTimeoutMs).toBe(1_000);
  });

  it.each([0, -1, Infinity, NaN, 'abc', '0s', null])('rejects ttl %p naming the option', (ttl) => {
    const err = configError(() => resolveCacheOptions({ ttl: ttl as never }));
    expect(err.message).toMatch(/\bttl must be/);
  });

  it.each([0, -5, NaN, Infinity])('rejects nullTtl %p', (nullTtl) => {
    expect(configError(() => resolveCacheOptions({ nullTtl })).message).toMatch(/nullTtl must be/);
  });

  it.each([-0.1, NaN, Infinity, '0.1'])('rejects jitter %p', (jitter) => {
    expect(configError(() => resolveCacheOptions({ jitter: jitter as never })).message).toMatch(/jitter must be/);
  });

  it.each([0, -1, NaN, Infinity, 'soon'])('rejects commandTimeout %p', (commandTimeout) => {
    expect(configError(() => resolveCacheOptions({ commandTimeout: commandTimeout as never })).message).toMatch(
      /commandTimeout must be/,
    );
  });

  it('rejects a bad profile value and a profile name that parses as a duration', () => {
    expect(configError(() => resolveCacheOptions({ ttlProfiles: { hot: 0 } })).message).toMatch(
      /ttlProfiles\.hot must be/,
    );
    expect(configError(() => resolveCacheOptions({ ttlProfiles: { '5m': 60 } })).message).toMatch(
      /ttlProfiles\.5m: a profile name must not parse as a duration/,
    );
  });

  it.each(['', 'has space', 'a*b', 'x'.repeat(129), 'a:b', 'shop:', '{a', 'a}', '{}', '{a}{b}', 'a@b', 'a#b'])(
    'rejects namespace %p',
    (namespace) => {
      expect(configError(() => resolveCacheOptions({ namespace })).message).toMatch(/namespace must/);
    },
  );

  it("rejects a namespace with ':' saying why: it would overlap another namespace's keys", () => {
    expect(configError(() => resolveCacheOptions({ namespace: 'shop:eu' })).message).toMatch(
      /namespace must not contain ':' \(namespace 'a' would overlap namespace 'a:b'\)/,
    );
  });

  it.each(['cache', 'shop-eu.v2', '{cache}', 'app{cache}v1'])('accepts namespace %p', (namespace) => {
    expect(resolveCacheOptions({ namespace }).namespace).toBe(namespace);
  });

  it('never shows a password from a bad redis option', () => {
    const err = configError(() => resolveCacheOptions({ redis: 'http://user:s3cret@host:6379' }));
    expect(err.message).not.toContain('s3cret');
    expect(err.message).toContain('user:***@');
  });

  it('rejects a redis URL without a redis scheme', () => {
    expect(configError(() => resolveCacheOptions({ redis: 'http://localhost:6379' })).message).toMatch(
      /redis URL must start with redis:\/\//,
    );
  });

  describe('compression', () => {
    const hasZstd = isCompressionAvailable('zstd');

    it.each([undefined, false])('is off for %p', (compression) => {
      expect(resolveCacheOptions({ compression }).compression).toBeUndefined();
    });

    it('takes true for gzip from 16 KiB at level 4', () => {
      expect(resolveCacheOptions({ compression: true }).compression).toEqual({
        algorithm: 'gzip',
        threshold: 16_384,
        level: 4,
      });
      expect(resolveCacheOptions({ compression: {} }).compression).toEqual(
        resolveCacheOptions({ compression: true }).compression,
      );
    });

    it('gives each algorithm its own default level, and keeps what is given', () => {
      expect(resolveCacheOptions({ compression: { algorithm: 'brotli' } }).compression).toEqual({
        algorithm: 'brotli',
        threshold: 16_384,
        level: 5,
      });
      expect(resolveCacheOptions({ compression: { algorithm: 'gzip', threshold: 0, level: 1 } }).compression).toEqual({
        algorithm: 'gzip',
        threshold: 0,
        level: 1,
      });
      expect(resolveCacheOptions({ compression: { algorithm: 'brotli', level: 11 } }).compression?.level).toBe(11);
    });

    it.each([
      ['a string', 'gzip', /compression must be true, false or \{ algorithm\?, threshold\?, level\? \} \(got 'gzip'\)/],
      ['a number', 1, /compression must be true, false or .* \(got 1\)/],
      ['null', null, /compression must be true, false or .* \(got null\)/],
      ['an array', ['gzip'], /compression must be true, false or .* \(got \['gzip'\]\)/],
      ['an unknown field', { algo: 'gzip' }, /compression has no option 'algo' \(it has algorithm, threshold, level\)/],
      [
        'an unknown algorithm',
        { algorithm: 'lz4' },
        /compression.algorithm must be 'gzip', 'brotli', 'zstd' \(got 'lz4'\)/,
      ],
      [
        'a negative threshold',
        { threshold: -1 },
        /compression.threshold must be a whole number of bytes >= 0, e.g. 16384 for 16 KiB \(got -1\)/,
      ],
      ['a fractional threshold', { threshold: 1.5 }, /compression.threshold must be a whole number of bytes >= 0/],
      ['a threshold with a unit', { threshold: '16kb' }, /compression.threshold must be .* \(got '16kb'\)/],
      ['an infinite threshold', { threshold: Infinity }, /compression.threshold must be .* \(got Infinity\)/],
      ['gzip level 0', { level: 0 }, /compression.level must be an integer from 1 to 9 for gzip \(got 0\)/],
      ['gzip level 10', { level: 10 }, /compression.level must be an integer from 1 to 9 for gzip \(got 10\)/],
      ['brotli quality 12', { algorithm: 'brotli', level: 12 }, /from 0 to 11 for brotli \(got 12\)/],
      ['a fractional level', { algorithm: 'brotli', level: 4.5 }, /from 0 to 11 for brotli \(got 4.5\)/],
    ])('rejects %s at bootstrap, naming the option', (_, compression, message) => {
      expect(configError(() => resolveCacheOptions({ compression: compression as never })).message).toMatch(message);
    });

    it('lists every problem of the option at once', () => {
      const err = configError(() => resolveCacheOptions({ compression: { threshold: -5, level: 99 } }));
      expect(err.message).toMatch(/compression.threshold must be/);
      expect(err.message).toMatch(/compression.level must be/);
    });

    (hasZstd ? it.skip : it)("rejects 'zstd' on a Node whose node:zlib lacks it, saying what to use", () => {
      const err = configError(() => resolveCacheOptions({ compression: { algorithm: 'zstd' } }));
      expect(err.message).toContain(
        `compression.algorithm 'zstd' needs a Node.js whose node:zlib has it (22.15+ or 23.8+), and this is ` +
          `${process.version}: use 'brotli' or 'gzip', or upgrade Node`,
      );
    });

    (hasZstd ? it : it.skip)("takes 'zstd' where node:zlib has it, at level 3", () => {
      expect(resolveCacheOptions({ compression: { algorithm: 'zstd' } }).compression).toEqual({
        algorithm: 'zstd',
        threshold: 16_384,
        level: 3,
      });
    });
  });

  it('takes shardedPubSub as true or false only', () => {
    expect(resolveCacheOptions({ shardedPubSub: true }).shardedPubSub).toBe(true);
    const err = configError(() => resolveCacheOptions({ shardedPubSub: 'yes' as unknown as boolean }));
    expect(err.message).toMatch(/shardedPubSub must be true or false \(got 'yes'\)/);
  });

  it('lists every problem in one error', () => {
    const err = configError(() => resolveCacheOptions({ ttl: 0, jitter: -1, commandTimeout: 0 }));
    expect(err.message).toMatch(/ttl must be/);
    expect(err.message).toMatch(/jitter must be/);
    expect(err.message).toMatch(/commandTimeout must be/);
  });
});

describe('resolveTtl', () => {
  const config = resolveCacheOptions({ ttl: 120, ttlProfiles: { user_profile: 86_400, trending: '5m' } });

  it('takes numbers as seconds, duration strings and profile names', () => {
    expect(resolveTtl(undefined, config, 'X.y')).toBe(120_000);
    expect(resolveTtl(30, config, 'X.y')).toBe(30_000);
    expect(resolveTtl('90s', config, 'X.y')).toBe(90_000);
    expect(resolveTtl('500ms', config, 'X.y')).toBe(500);
    expect(resolveTtl('user_profile', config, 'X.y')).toBe(86_400_000);
    expect(resolveTtl('trending', config, 'X.y')).toBe(300_000);
  });

  it('names the caller and the known profiles for an unknown profile', () => {
    const err = configError(() => resolveTtl('user_feed', config, 'FeedService.load @Cacheable'));
    expect(err.message).toContain('FeedService.load @Cacheable');
    expect(err.message).toContain("'user_feed'");
    expect(err.message).toContain('user_profile, trending');
  });

  it.each([0, -1, Infinity, NaN])('rejects the TTL %p naming the caller', (ttl) => {
    expect(configError(() => resolveTtl(ttl, config, 'X.y @CachePut')).message).toMatch(/^X\.y @CachePut: ttl must be/);
  });
});
