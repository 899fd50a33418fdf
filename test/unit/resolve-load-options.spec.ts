// Load options (lock, lockTtl, lockWait, earlyRefresh, staleWhileRevalidate, grace, timeout): units,
// duration strings, defaults from the module's config, and errors naming where and which option.
import { configError } from '../support/config-error.js';
import { resolveLoadPolicy, resolveRetention } from '../../lib/options/resolve-load-options.js';
import { resolveCacheOptions } from '../../lib/options/resolve-options.js';
import type { CacheLoadOptions } from '../../lib/options/cache-load-options.interface.js';

const WHERE = 'UsersService.findOne @Cacheable';
const defaults = resolveCacheOptions({ redis: 'redis://127.0.0.1:6379' });

const resolve = (options: Record<string, unknown>, config = defaults) =>
  resolveLoadPolicy(options as CacheLoadOptions, config, WHERE);

describe('resolveLoadPolicy', () => {
  it('defaults: lock on, 10 s lease, 5 s wait, no early refresh, no stale windows, no timeout', () => {
    expect(resolve({})).toEqual({
      lock: true,
      lockTtlMs: 10_000,
      lockWaitMs: 5_000,
      earlyRefreshBeta: 0,
      staleWhileRevalidateMs: 0,
      graceMs: 0,
      timeoutMs: undefined,
    });
  });

  it("takes lock, lockTtl and lockWait defaults from the module's config", () => {
    const config = resolveCacheOptions({ redis: 'redis://127.0.0.1:6379', lock: false, lockTtl: '30s', lockWait: 250 });
    expect(resolve({}, config)).toMatchObject({ lock: false, lockTtlMs: 30_000, lockWaitMs: 250 });
    // ...which the method's own options override.
    expect(resolve({ lock: true, lockTtl: 2, lockWait: '1s' }, config)).toMatchObject({
      lock: true,
      lockTtlMs: 2_000,
      lockWaitMs: 1_000,
    });
  });

  it('bare numbers: seconds for lockTtl, staleWhileRevalidate and grace; milliseconds for lockWait and timeout', () => {
    expect(resolve({ lockTtl: 3, staleWhileRevalidate: 60, grace: 1.5, lockWait: 200, timeout: 150 })).toEqual({
      lock: true,
      lockTtlMs: 3_000,
      lockWaitMs: 200,
      earlyRefreshBeta: 0,
      staleWhileRevalidateMs: 60_000,
      graceMs: 1_500,
      timeoutMs: 150,
    });
  });

  it.each([
    ['lockTtl', '1500ms', 'lockTtlMs', 1_500],
    ['lockTtl', '2m', 'lockTtlMs', 120_000],
    ['lockWait', '2s', 'lockWaitMs', 2_000],
    ['lockWait', '750ms', 'lockWaitMs', 750],
    ['staleWhileRevalidate', '5m', 'staleWhileRevalidateMs', 300_000],
    ['grace', '1h', 'graceMs', 3_600_000],
    ['grace', '1.5d', 'graceMs', 129_600_000],
    ['timeout', '0.5s', 'timeoutMs', 500],
    ['timeout', '200ms', 'timeoutMs', 200],
  ])('duration string: %s %p -> %s %p', (option, value, field, ms) => {
    expect(resolve({ [option]: value })).toMatchObject({ [field]: ms });
  });

  it('earlyRefresh: true is beta 1, false is 0, a number is the beta', () => {
    expect(resolve({ earlyRefresh: true }).earlyRefreshBeta).toBe(1);
    expect(resolve({ earlyRefresh: false }).earlyRefreshBeta).toBe(0);
    expect(resolve({ earlyRefresh: 2.5 }).earlyRefreshBeta).toBe(2.5);
    expect(resolve({ earlyRefresh: 0 }).earlyRefreshBeta).toBe(0);
  });

  it('accepts zero where zero means "none": lockWait, staleWhileRevalidate, grace', () => {
    expect(resolve({ lockWait: 0, staleWhileRevalidate: 0, grace: '0s' })).toMatchObject({
      lockWaitMs: 0,
      staleWhileRevalidateMs: 0,
      graceMs: 0,
    });
  });

  it.each([
    ['lockTtl', 0, /lockTtl must be a positive, finite number of seconds or a duration like '30s' \(got 0\)/],
    ['lockTtl', -1, /lockTtl must be a positive/],
    ['lockTtl', Infinity, /lockTtl must be a positive/],
    ['lockTtl', NaN, /lockTtl must be a positive/],
    ['lockTtl', '0ms', /lockTtl must be a positive.*\(got '0ms'\)/],
    ['lockTtl', '10 seconds', /lockTtl must be a positive.*\(got '10 seconds'\)/],
    ['lockWait', -1, /lockWait must be a non-negative, finite number of milliseconds or a duration like '500ms'/],
    ['lockWait', Infinity, /lockWait must be a non-negative/],
    ['lockWait', 'soon', /lockWait must be a non-negative.*\(got 'soon'\)/],
    ['staleWhileRevalidate', -0.5, /staleWhileRevalidate must be a non-negative, finite number of seconds/],
    ['staleWhileRevalidate', '5 min', /staleWhileRevalidate must be a non-negative/],
    ['grace', -1, /grace must be a non-negative, finite number of seconds/],
    ['grace', NaN, /grace must be a non-negative/],
    ['grace', {}, /grace must be a non-negative/],
    ['timeout', 0, /timeout must be a positive, finite number of milliseconds/],
    ['timeout', -10, /timeout must be a positive/],
    ['timeout', '0s', /timeout must be a positive/],
    ['timeout', true, /timeout must be a positive.*\(got true\)/],
    ['earlyRefresh', -1, /earlyRefresh must be true, false or a beta >= 0 such as 1 \(got -1\)/],
    ['earlyRefresh', NaN, /earlyRefresh must be true, false or a beta/],
    ['earlyRefresh', Infinity, /earlyRefresh must be true, false or a beta/],
    ['earlyRefresh', '1', /earlyRefresh must be true, false or a beta/],
    ['lock', 'yes', /lock must be true or false \(got yes\)/],
    ['lock', 1, /lock must be true or false/],
  ])('rejects %s %p, naming where and the option', (option, value, message) => {
    const err = configError(() => resolve({ [option]: value }));
    expect(err.message).toMatch(message);
    expect(err.message.startsWith(`${WHERE}: ${option} must be`)).toBe(true);
  });
});

describe('resolveRetention', () => {
  it('staleWhileRevalidate and grace in ms, 0 when absent', () => {
    expect(resolveRetention({}, 'CacheService.set')).toEqual({ staleWhileRevalidateMs: 0, graceMs: 0 });
    expect(resolveRetention({ staleWhileRevalidate: 30, grace: '2h' }, 'CacheService.set')).toEqual({
      staleWhileRevalidateMs: 30_000,
      graceMs: 7_200_000,
    });
  });

  it('rejects bad values naming where and the option', () => {
    const err = configError(() => resolveRetention({ grace: -1 }, 'Posts.update @CachePut'));
    expect(err.message).toMatch(/^Posts\.update @CachePut: grace must be/);
    const swr = configError(() => resolveRetention({ staleWhileRevalidate: 'x' as never }, 'CacheService.set'));
    expect(swr.message).toMatch(/^CacheService\.set: staleWhileRevalidate must be/);
  });
});
