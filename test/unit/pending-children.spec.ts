import { jest } from '@jest/globals';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import type { CacheCallEvent, CacheLoadEndEvent } from '../../lib/events/cache-events.js';
import { CLAIM_WITHIN_MS, PendingChildren, type PendingChild } from '../../lib/opentelemetry/pending-children.js';

const source = { cache: 'default', namespace: 'ns', name: 'Users.find' };

function load(key: string, at: number): PendingChild {
  const event: CacheLoadEndEvent = { ...source, key, background: false, durationMs: 5, failed: false };
  return { kind: 'load', event, end: Date.now(), at, context: ROOT_CONTEXT };
}

function call(key: string): CacheCallEvent {
  return {
    ...source,
    key,
    operation: 'read',
    outcome: 'miss',
    tier: 'redis',
    durationMs: 10,
    startTime: Date.now() - 10,
    fallback: false,
  };
}

describe('PendingChildren', () => {
  afterEach(() => jest.useRealTimers());

  it('gives a call the children of its key that finished after it began, and only those', () => {
    const unclaimed: PendingChild[] = [];
    const children = new PendingChildren((child) => unclaimed.push(child));
    const before = load('ns:u:1', 100);
    const mine = load('ns:u:1', 150);
    const other = load('ns:u:2', 150);
    for (const child of [before, mine, other]) children.add(child);
    expect(children.take(call('ns:u:1'), 120)).toEqual([mine]);
    expect(children.take(call('ns:u:1'), 120)).toEqual([]);
    children.flush();
    expect(unclaimed).toEqual([before, other]);
  });

  it('exports a child no call claims within CLAIM_WITHIN_MS, under the context it arrived in', async () => {
    jest.useFakeTimers();
    const unclaimed: PendingChild[] = [];
    const children = new PendingChildren((child) => unclaimed.push(child));
    const late = load('ns:u:3', performance.now());
    children.add(late);
    await jest.advanceTimersByTimeAsync(CLAIM_WITHIN_MS - 1);
    expect(unclaimed).toEqual([]);
    await jest.advanceTimersByTimeAsync(CLAIM_WITHIN_MS + 1);
    expect(unclaimed).toEqual([late]);
    expect(children.take(call('ns:u:3'), 0)).toEqual([]);
  });
});
