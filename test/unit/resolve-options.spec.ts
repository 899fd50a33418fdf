// Module options: defaults, unit conversion and validation with messages that name the option.
import { configError } from '../support/config-error.js';
import { resolveCacheOptions, resolveTtl } from '../../lib/options/resolve-options.js';

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
