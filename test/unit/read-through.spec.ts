// The read-through's decisions (lib/core/read/read-through.ts) with every part below it faked: what it
// answers, when the method runs, when a lease is taken, waited for, completed or not. Redis behaviour
// itself is tested on Redis (test/integration, test/contract); this is the logic between.
import { DecodedEntry, LEASED, NOTHING, type EntryRead } from '../../lib/core/cache-entry.js';
import type { LoadResult, WritePolicy } from '../../lib/core/cache-engine.types.js';
import { FAILED, type FailOpenStore, type LeaseOutcome } from '../../lib/core/fail-open-store.js';
import type { EntryReader } from '../../lib/core/read/entry-reader.js';
import type { LeaseSession } from '../../lib/core/read/lease-session.js';
import { ReadThrough, type RunningReads } from '../../lib/core/read/read-through.js';
import type { Flight } from '../../lib/core/single-flight.js';
import type { CacheEventPublisher } from '../../lib/events/cache-event-publisher.js';
import type { LoadPolicy } from '../../lib/options/resolve-load-options.js';
import type { CarriedEntry, WakeReason } from '../../lib/store/lease-waiters.js';

const POLICY: LoadPolicy = {
  lock: true,
  lockTtlMs: 10_000,
  lockWaitMs: 5_000,
  earlyRefreshBeta: 0,
  staleWhileRevalidateMs: 0,
  graceMs: 0,
  timeoutMs: undefined,
};
const WRITE: WritePolicy = { ttlMs: 60_000 };
const KEY = 'ns:item:1';
const NAME = 'Items.find';

/** An entry as the reader decodes it: fresh for `freshForMs` (negative: expired that long ago). */
function entry(value: unknown, freshForMs: number): DecodedEntry {
  return new DecodedEntry(value, Date.now() + freshForMs, 5, Buffer.alloc(48));
}
const found = (decoded: DecodedEntry): EntryRead => ({ entry: decoded, leased: false, failed: false });

/** Everything below the read-through, scripted per test, and what it was asked. */
class Fakes {
  /** What GET answers: a payload the fake reader decodes as `decoded`, null, or FAILED. */
  get: 'entry' | null | typeof FAILED = null;
  decoded: DecodedEntry | EntryRead = NOTHING;
  /** What each re-read answers, in turn (after the first GET). */
  rereads: EntryRead[] = [];
  /** What each lease attempt answers, in turn. */
  attempts: LeaseOutcome[] = [{ status: 'acquired' }];
  /** How each wait for a release ends, in turn: a reason, or a release that carried an entry ('stored'). */
  wakes: Array<WakeReason | { carried: CarriedEntry }> = [];
  /** What the reader makes of a carried entry's bytes, by their text (absent: not a value). */
  carriedValues = new Map<string, DecodedEntry>();
  down = false;
  running = true;
  readonly completed: { key: string; stored: boolean }[] = [];
  readonly asked: string[] = [];
  readonly foreign: string[] = [];
  readonly waits: string[] = [];
  readonly refreshes: boolean[] = [];

  parts() {
    const store = {
      read: async (_key: string, _name: string, then: (payload: Buffer | null | typeof FAILED) => unknown) => {
        this.asked.push('get');
        return then(this.get === 'entry' ? Buffer.from('x') : this.get);
      },
    } as unknown as FailOpenStore;
    const reader = {
      decode: () => this.decoded,
      decodeCarried: (_key: string, _name: string, bytes: Buffer) => {
        this.asked.push('decodeCarried');
        return this.carriedValues.get(bytes.toString());
      },
      read: async () => {
        this.asked.push('reread');
        return this.rereads.shift() ?? NOTHING;
      },
    } as unknown as EntryReader;
    const leases = {
      listening: true,
      listen: () => {
        let carried: CarriedEntry | undefined;
        return {
          wait: async () => {
            const next = this.wakes.shift() ?? 'timeout';
            if (typeof next === 'string') return next;
            carried = next.carried;
            return 'stored';
          },
          carried: () => carried,
          cancel: () => undefined,
        };
      },
      acquire: async () => {
        this.asked.push('acquire');
        return this.attempts.shift() ?? { status: 'acquired' };
      },
      hold: async () => true,
      complete: async (key: string, _token: Buffer, prepared: unknown) => {
        this.completed.push({ key, stored: prepared !== undefined });
      },
    } as unknown as LeaseSession;
    const running: RunningReads = {
      store,
      reader,
      leases,
      isDown: () => this.down,
      loadEpoch: () => 0,
      prepare: async () => ({ bytes: Buffer.from('entry'), pxMs: 60_000 }),
      foreignKey: (key) => this.foreign.push(key),
    };
    const events = {
      load: (_name: string, _key: string, _background: boolean, loader: () => Promise<unknown>) => loader(),
      refreshed: (_name: string, failed = false) => this.refreshes.push(failed),
      leaseWaited: (_name: string, _key: string, _ms: number, result: string) => this.waits.push(result),
    } as unknown as CacheEventPublisher;
    return { events, warnOnce: () => undefined, running: () => (this.running ? running : undefined) };
  }
}

function flight(): Flight<LoadResult<unknown>> {
  return { promise: undefined, superseded: false };
}

/** One read of KEY through a read-through on `fakes`; `loads` counts the method's runs. */
async function read(fakes: Fakes, policy: Partial<LoadPolicy> = {}, method?: () => Promise<unknown>) {
  const readThrough = new ReadThrough(fakes.parts());
  let loads = 0;
  const loader = () => {
    loads++;
    return method ? method() : Promise.resolve('loaded');
  };
  const result = await readThrough.run(KEY, loader, WRITE, { ...POLICY, ...policy }, NAME, flight());
  return { result, loads: () => loads };
}

describe('ReadThrough', () => {
  it('a fresh entry is a hit: no lease, no method', async () => {
    const fakes = new Fakes();
    fakes.get = 'entry';
    fakes.decoded = entry('cached', 60_000);
    const { result, loads } = await read(fakes);
    expect(result).toMatchObject({ value: 'cached', outcome: 'hit' });
    expect(loads()).toBe(0);
    expect(fakes.asked).toEqual(['get']);
  });

  it('a miss takes the lease, runs the method once and completes the lease with the value', async () => {
    const fakes = new Fakes();
    const { result, loads } = await read(fakes);
    expect(result).toEqual({ value: 'loaded', outcome: 'miss' });
    expect(loads()).toBe(1);
    expect(fakes.asked).toEqual(['get', 'acquire']);
    expect(fakes.completed).toEqual([{ key: KEY, stored: true }]);
  });

  it('a method that throws completes the lease without a value, and the error reaches the caller', async () => {
    const fakes = new Fakes();
    await expect(read(fakes, {}, () => Promise.reject(new Error('source down')))).rejects.toThrow('source down');
    expect(fakes.completed).toEqual([{ key: KEY, stored: false }]);
  });

  it("a held lease is waited for; the holder's value is then a hit and the method does not run", async () => {
    const fakes = new Fakes();
    fakes.decoded = LEASED;
    fakes.attempts = [{ status: 'held', remainingMs: 1_000 }];
    fakes.wakes = ['stored'];
    fakes.rereads = [found(entry('theirs', 60_000))];
    const { result, loads } = await read(fakes);
    expect(result).toMatchObject({ value: 'theirs', outcome: 'hit' });
    expect(loads()).toBe(0);
    expect(fakes.waits).toEqual(['value']);
    expect(fakes.completed).toEqual([]);
  });

  describe('a release that carries the value', () => {
    const holder = Buffer.from('holder-1');
    const waitFor = (fakes: Fakes, carried: CarriedEntry) => {
      fakes.decoded = LEASED;
      fakes.attempts = [{ status: 'held', remainingMs: 1_000, holder }];
      fakes.wakes = [{ carried }];
      fakes.rereads = [found(entry('read again', 60_000))];
    };

    it('answers with it, without reading the key again, when it comes from the lease waited for', async () => {
      const fakes = new Fakes();
      waitFor(fakes, { holder: Buffer.from(holder), entry: Buffer.from('theirs') });
      fakes.carriedValues.set('theirs', entry('theirs', 60_000));
      const { result, loads } = await read(fakes);
      expect(result).toMatchObject({ value: 'theirs', outcome: 'hit' });
      expect(loads()).toBe(0);
      expect(fakes.asked).toEqual(['get', 'acquire', 'decodeCarried']);
      expect(fakes.waits).toEqual(['value']);
    });

    it('from another lease (a forged or an older release) is not even decoded: the key is read', async () => {
      const fakes = new Fakes();
      waitFor(fakes, { holder: Buffer.from('holder-2'), entry: Buffer.from('forged') });
      fakes.carriedValues.set('forged', entry('forged', 60_000));
      const { result } = await read(fakes);
      expect(result).toMatchObject({ value: 'read again', outcome: 'hit' });
      expect(fakes.asked).toEqual(['get', 'acquire', 'reread']);
    });

    it('is not taken when the store named no holder: the key is read', async () => {
      const fakes = new Fakes();
      waitFor(fakes, { holder: Buffer.from(holder), entry: Buffer.from('theirs') });
      fakes.attempts = [{ status: 'held', remainingMs: 1_000 }];
      fakes.carriedValues.set('theirs', entry('theirs', 60_000));
      const { result } = await read(fakes);
      expect(result).toMatchObject({ value: 'read again' });
      expect(fakes.asked).toEqual(['get', 'acquire', 'reread']);
    });

    it('that does not decode to a value, or is invalidated, is not served: the key is read', async () => {
      for (const carried of [undefined, Object.assign(entry('invalidated', 60_000), { invalidated: true })]) {
        const fakes = new Fakes();
        waitFor(fakes, { holder: Buffer.from(holder), entry: Buffer.from('theirs') });
        if (carried) fakes.carriedValues.set('theirs', carried);
        const { result } = await read(fakes);
        expect(result).toMatchObject({ value: 'read again' });
        expect(fakes.asked).toEqual(['get', 'acquire', 'decodeCarried', 'reread']);
      }
    });
  });

  it('a holder that stored nothing wakes the waiter to run the method itself, without writing', async () => {
    const fakes = new Fakes();
    fakes.attempts = [{ status: 'held', remainingMs: 1_000 }];
    fakes.wakes = ['empty'];
    const { result, loads } = await read(fakes);
    expect(result).toEqual({ value: 'loaded', outcome: 'miss' });
    expect(loads()).toBe(1);
    expect(fakes.waits).toEqual(['empty']);
    expect(fakes.completed).toEqual([]);
  });

  it("a wait that takes several wake-ups is recorded once, by how it ended: the holder's value", async () => {
    const fakes = new Fakes();
    fakes.decoded = LEASED;
    fakes.attempts = [
      { status: 'held', remainingMs: 1_000 },
      { status: 'held', remainingMs: 1_000 },
    ];
    // Woken once without the value (the subscription dropped: the lease was still held), then by the release.
    fakes.wakes = ['lost', 'stored'];
    fakes.rereads = [LEASED, found(entry('theirs', 60_000))];
    const { result, loads } = await read(fakes);
    expect(result).toMatchObject({ value: 'theirs', outcome: 'hit' });
    expect(loads()).toBe(0);
    expect(fakes.waits).toEqual(['value']);
  });

  it("a wait that ends with the holder's lease gone and this caller taking it over is recorded as empty", async () => {
    const fakes = new Fakes();
    fakes.decoded = LEASED;
    fakes.attempts = [{ status: 'held', remainingMs: 1_000 }, { status: 'acquired' }];
    fakes.wakes = ['timeout'];
    fakes.rereads = [NOTHING];
    const { result, loads } = await read(fakes);
    expect(result).toEqual({ value: 'loaded', outcome: 'miss' });
    expect(loads()).toBe(1);
    expect(fakes.waits).toEqual(['empty']);
    expect(fakes.completed).toEqual([{ key: KEY, stored: true }]);
  });

  it('with lock: false a held lease is not waited for: the method runs, nothing is written', async () => {
    const fakes = new Fakes();
    fakes.attempts = [{ status: 'held', remainingMs: 1_000 }];
    const { result, loads } = await read(fakes, { lock: false });
    expect(result).toEqual({ value: 'loaded', outcome: 'miss' });
    expect(loads()).toBe(1);
    expect(fakes.waits).toEqual([]);
    expect(fakes.completed).toEqual([]);
  });

  it('a wait that runs out of lockWait runs the method without writing', async () => {
    const fakes = new Fakes();
    fakes.attempts = [{ status: 'held', remainingMs: 60_000 }];
    const { result, loads } = await read(fakes, { lockWaitMs: 0 });
    expect(result).toEqual({ value: 'loaded', outcome: 'miss' });
    expect(loads()).toBe(1);
    expect(fakes.completed).toEqual([]);
  });

  it('a failed read during an outage goes straight to the method: no lease, outcome error', async () => {
    const fakes = new Fakes();
    fakes.get = FAILED;
    fakes.down = true;
    const { result, loads } = await read(fakes);
    expect(result).toEqual({ value: 'loaded', outcome: 'error' });
    expect(loads()).toBe(1);
    expect(fakes.asked).toEqual(['get']);
  });

  it('a failed lease attempt runs the method without writing, outcome error', async () => {
    const fakes = new Fakes();
    fakes.attempts = [{ status: 'failed' }];
    const { result } = await read(fakes);
    expect(result).toEqual({ value: 'loaded', outcome: 'error' });
    expect(fakes.completed).toEqual([]);
  });

  it('a key holding something else is left alone and named once', async () => {
    const fakes = new Fakes();
    fakes.attempts = [{ status: 'foreign' }];
    const { result } = await read(fakes);
    expect(result).toEqual({ value: 'loaded', outcome: 'error' });
    expect(fakes.foreign).toEqual([KEY]);
  });

  it('within staleWhileRevalidate the old value answers at once and one background refresh runs', async () => {
    const fakes = new Fakes();
    fakes.get = 'entry';
    fakes.decoded = entry('old', -1_000);
    const { result, loads } = await read(fakes, { staleWhileRevalidateMs: 10_000 });
    expect(result).toEqual({ value: 'old', outcome: 'stale' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(loads()).toBe(1);
    expect(fakes.refreshes).toEqual([false]);
    expect(fakes.completed).toEqual([{ key: KEY, stored: true }]);
  });

  it('a value within grace answers when the method throws', async () => {
    const fakes = new Fakes();
    fakes.get = 'entry';
    fakes.decoded = entry('old', -1_000);
    const { result } = await read(fakes, { graceMs: 60_000 }, () => Promise.reject(new Error('source down')));
    expect(result).toEqual({ value: 'old', outcome: 'stale', fallback: true });
  });

  it('a value within grace answers when the method passes timeout; the load goes on and is stored', async () => {
    const fakes = new Fakes();
    fakes.get = 'entry';
    fakes.decoded = entry('old', -1_000);
    let finish: (value: string) => void = () => undefined;
    const slow = () => new Promise<string>((resolve) => (finish = resolve));
    const { result } = await read(fakes, { graceMs: 60_000, timeoutMs: 20 }, slow);
    expect(result).toEqual({ value: 'old', outcome: 'stale', fallback: true });
    expect(fakes.refreshes).toEqual([false]);
    finish('new');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fakes.completed).toEqual([{ key: KEY, stored: true }]);
  });

  it('an invalidated entry answers nothing, not even as a fallback', async () => {
    const fakes = new Fakes();
    fakes.get = 'entry';
    const invalidated = entry('old', 60_000);
    invalidated.invalidated = true;
    fakes.decoded = invalidated;
    await expect(read(fakes, { graceMs: 60_000 }, () => Promise.reject(new Error('source down')))).rejects.toThrow(
      'source down',
    );
  });

  it('a cache that is not running serves the method: no read, no lease', async () => {
    const fakes = new Fakes();
    fakes.running = false;
    const { result, loads } = await read(fakes);
    expect(result).toEqual({ value: 'loaded', outcome: 'miss' });
    expect(loads()).toBe(1);
    expect(fakes.asked).toEqual([]);
  });

  it('a read that failed but Redis is up still takes the lease (outcome error), so one caller loads', async () => {
    const fakes = new Fakes();
    fakes.get = FAILED;
    const { result } = await read(fakes);
    expect(result).toEqual({ value: 'loaded', outcome: 'error' });
    expect(fakes.asked).toEqual(['get', 'acquire']);
    expect(fakes.completed).toEqual([{ key: KEY, stored: true }]);
  });
});
