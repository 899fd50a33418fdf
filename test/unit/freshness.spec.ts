// What an entry may answer: one function decides it for every read (lib/core/read/freshness.ts).
import { DecodedEntry } from '../../lib/core/cache-entry.js';
import { FRESH_ONLY, freshnessOf } from '../../lib/core/read/freshness.js';

const NOW = 1_000_000;
const entry = (freshUntil: number, loadMs = 0) => new DecodedEntry('v', freshUntil, loadMs, Buffer.alloc(0));
const windows = { earlyRefreshBeta: 0, staleWhileRevalidateMs: 5_000, graceMs: 60_000 };

describe('freshnessOf', () => {
  it('nothing read is expired', () => {
    expect(freshnessOf(undefined, windows, NOW)).toBe('expired');
  });

  it('before freshUntil an entry is fresh; at it, it is not', () => {
    expect(freshnessOf(entry(NOW + 1), windows, NOW)).toBe('fresh');
    expect(freshnessOf(entry(NOW), windows, NOW)).toBe('stale');
  });

  it('past its TTL: stale within staleWhileRevalidate, then grace within grace, then expired', () => {
    expect(freshnessOf(entry(NOW - 4_999), windows, NOW)).toBe('stale');
    expect(freshnessOf(entry(NOW - 5_000), windows, NOW)).toBe('grace');
    expect(freshnessOf(entry(NOW - 59_999), windows, NOW)).toBe('grace');
    expect(freshnessOf(entry(NOW - 60_000), windows, NOW)).toBe('expired');
  });

  it('a grace window shorter than the stale one adds nothing', () => {
    const policy = { earlyRefreshBeta: 0, staleWhileRevalidateMs: 10_000, graceMs: 1_000 };
    expect(freshnessOf(entry(NOW - 9_000), policy, NOW)).toBe('stale');
    expect(freshnessOf(entry(NOW - 10_000), policy, NOW)).toBe('expired');
  });

  it('an invalidated entry answers nothing, not even as a fallback', () => {
    for (const freshUntil of [NOW + 10_000, NOW - 1_000, NOW - 30_000]) {
      const invalidated = entry(freshUntil);
      invalidated.invalidated = true;
      expect(freshnessOf(invalidated, windows, NOW)).toBe('expired');
    }
  });

  it('XFetch: a refresh when now - loadMs * beta * ln(random) reaches freshUntil', () => {
    const early = { ...windows, earlyRefreshBeta: 1 };
    // ln(e^-1) = -1: the read counts as loadMs later than it is.
    const draw = () => Math.exp(-1);
    expect(freshnessOf(entry(NOW + 100, 100), early, NOW, draw)).toBe('refresh');
    expect(freshnessOf(entry(NOW + 101, 100), early, NOW, draw)).toBe('fresh');
    // Beta 0 never refreshes early, however close to expiry.
    expect(freshnessOf(entry(NOW + 1, 1_000_000), windows, NOW, draw)).toBe('fresh');
  });

  it("CacheService.get's windows: only fresh answers", () => {
    expect(freshnessOf(entry(NOW + 1), FRESH_ONLY, NOW)).toBe('fresh');
    expect(freshnessOf(entry(NOW - 1), FRESH_ONLY, NOW)).toBe('expired');
  });
});
