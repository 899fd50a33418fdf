// Release messages as the subscriber hands them to the waiters (lib/store/lease-waiters.ts): what wakes
// whom, what a release that carries an entry hands on, and what is rejected. Messages come by pub/sub:
// untrusted input, so every shape that is not one COMPLETE_LEASE publishes is counted and not acted on.
import { TOKEN_LENGTH } from '../../lib/core/cache-entry.js';
import { LEASE_TOKEN_BYTES } from '../../lib/store/entry-scripts.js';
import { LeaseWaiters } from '../../lib/store/lease-waiters.js';

const KEY = 'ns:item:1';
const TOKEN = Buffer.from('01234567');

function waiters() {
  let rejected = 0;
  const waiting = new LeaseWaiters(
    (key) => key.startsWith('ns:'),
    () => rejected++,
  );
  return { waiting, rejected: () => rejected };
}

/** What one wait on KEY ends with, after `message` is released (or after 10 ms). */
async function wakeBy(message: string | Buffer) {
  const { waiting, rejected } = waiters();
  const wake = waiting.listen(KEY);
  const woken = wake.wait(10);
  waiting.released(message);
  return { reason: await woken, carried: wake.carried(), rejected: rejected() };
}

describe('LeaseWaiters', () => {
  it('the token length the messages use is the entry header’s', () => {
    expect(LEASE_TOKEN_BYTES).toBe(TOKEN_LENGTH);
  });

  it('a key wakes its waiters to read it; with NUL after it, to run the method', async () => {
    for (const message of [KEY, Buffer.from(KEY)]) {
      expect(await wakeBy(message)).toEqual({ reason: 'stored', carried: undefined, rejected: 0 });
    }
    for (const message of [`${KEY}\0`, Buffer.from(`${KEY}\0`)]) {
      expect(await wakeBy(message)).toEqual({ reason: 'empty', carried: undefined, rejected: 0 });
    }
  });

  it('a release that carries an entry hands on the holder’s token and the entry, NULs and all', async () => {
    const entry = Buffer.from([0xc1, 0x12, 0, 0, 7, 0]);
    const woken = await wakeBy(Buffer.concat([Buffer.from(`${KEY}\0`), TOKEN, entry]));
    expect(woken.reason).toBe('stored');
    expect(woken.carried).toEqual({ holder: TOKEN, entry });
    expect(woken.rejected).toBe(0);
  });

  it('another key’s release wakes nobody else; a key outside the namespace is rejected', async () => {
    expect(await wakeBy(Buffer.concat([Buffer.from('ns:item:2\0'), TOKEN, Buffer.from('x')]))).toEqual({
      reason: 'timeout',
      carried: undefined,
      rejected: 0,
    });
    expect(await wakeBy(Buffer.concat([Buffer.from('other:item:1\0'), TOKEN, Buffer.from('x')]))).toMatchObject({
      reason: 'timeout',
      rejected: 1,
    });
  });

  it('a message too short to hold a token and an entry is rejected and wakes nobody', async () => {
    for (const after of [Buffer.from('x'), TOKEN]) {
      expect(await wakeBy(Buffer.concat([Buffer.from(`${KEY}\0`), after]))).toEqual({
        reason: 'timeout',
        carried: undefined,
        rejected: 1,
      });
    }
  });

  it('the first wake-up decides: a later release’s entry is not handed to a waiter already woken', async () => {
    const { waiting } = waiters();
    const wake = waiting.listen(KEY);
    waiting.wakeAll('lost');
    waiting.released(Buffer.concat([Buffer.from(`${KEY}\0`), TOKEN, Buffer.from('late')]));
    expect(await wake.wait(10)).toBe('lost');
    expect(wake.carried()).toBeUndefined();
  });
});
