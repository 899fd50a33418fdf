import { jest } from '@jest/globals';
import { LeaseReturns, MAX_RETURNS } from '../../lib/core/read/lease-returns.js';
import { CommandTimeoutError } from '../../lib/store/redis-cache.store.js';

/** A give-back that records `key/token` and fails while `failing` is set. */
function fakeGiveBack() {
  const calls = { released: [] as string[], failing: false };
  const giveBack = async (key: string, token: Buffer) => {
    if (calls.failing) throw new Error('down');
    calls.released.push(`${key}/${token.toString('hex')}`);
  };
  return { giveBack, calls };
}

const token = (hex: string) => Buffer.from(hex, 'hex');

describe('LeaseReturns', () => {
  afterEach(() => jest.useRealTimers());

  it('gives a lease back by its token once, then is empty', async () => {
    const { giveBack, calls } = fakeGiveBack();
    const returns = new LeaseReturns(giveBack);
    returns.later('ns:c', token('0102'), new Error('refused'));
    expect(returns.size).toBe(1);
    await returns.flush();
    expect(calls.released).toEqual(['ns:c/0102']);
    expect(returns.size).toBe(0);
    await returns.flush();
    expect(calls.released).toEqual(['ns:c/0102']);
    returns.stop();
  });

  it('gives back two leases of one key (two timed-out attempts) by their own tokens', async () => {
    const { giveBack, calls } = fakeGiveBack();
    const returns = new LeaseReturns(giveBack);
    returns.later('ns:k', token('0101010101010101'));
    returns.later('ns:k', token('0202020202020202'));
    returns.later('ns:k', token('0202020202020202'));
    expect(returns.size).toBe(2);
    await returns.flush();
    expect(calls.released.sort()).toEqual(['ns:k/0101010101010101', 'ns:k/0202020202020202']);
    returns.stop();
  });

  it('holds a return back until the timed-out command that may take the lease is done with', async () => {
    const { giveBack, calls } = fakeGiveBack();
    const returns = new LeaseReturns(giveBack);
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    returns.later('ns:late', token('01'), new CommandTimeoutError('timed out', settled));
    expect(returns.size).toBe(1);
    await returns.flush();
    // The acquisition may still land: a give-back before it would leave its lease behind.
    expect(calls.released).toEqual([]);
    settle();
    await settled;
    await returns.flush();
    expect(calls.released).toEqual(['ns:late/01']);
    expect(returns.size).toBe(0);
    returns.stop();
  });

  it('keeps what fails again and retries it every second on its own (an error reply brings no recovery)', async () => {
    jest.useFakeTimers();
    const { giveBack, calls } = fakeGiveBack();
    const returns = new LeaseReturns(giveBack);
    calls.failing = true;
    returns.later('ns:a', token('0a'));
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls.released).toEqual([]);
    expect(returns.size).toBe(1);
    calls.failing = false;
    await jest.advanceTimersByTimeAsync(999);
    expect(calls.released).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls.released).toEqual(['ns:a/0a']);
    expect(returns.size).toBe(0);
    returns.stop();
  });

  it('stops retrying once stopped', async () => {
    jest.useFakeTimers();
    const { giveBack, calls } = fakeGiveBack();
    const returns = new LeaseReturns(giveBack);
    returns.later('ns:a', token('0a'));
    returns.stop();
    await jest.advanceTimersByTimeAsync(5_000);
    expect(calls.released).toEqual([]);
  });

  it('remembers at most MAX_RETURNS leases: the rest end by their TTL', async () => {
    const { giveBack, calls } = fakeGiveBack();
    const returns = new LeaseReturns(giveBack);
    for (let i = 0; i <= MAX_RETURNS; i++) returns.later(`ns:k${i}`, token('01'));
    expect(returns.size).toBe(MAX_RETURNS);
    await returns.flush();
    expect(calls.released).toHaveLength(MAX_RETURNS);
    expect(calls.released).not.toContain(`ns:k${MAX_RETURNS}/01`);
    returns.stop();
  });
});
