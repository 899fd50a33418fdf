// The early lease attempt (lib/core/read/read-through.ts, lease-session.ts): a caller that joins a
// read of a key while its GET is out, when the last value read here for the key is no longer fresh,
// sends the lease attempt a miss needs right behind the GET. The read-through's side with every part
// below it faked (as in read-through.spec.ts), and the lease session's side on a faked store. The
// stampede across real processes is test/integration/stampede-processes.spec.ts.
import { jest } from '@jest/globals';
import { DecodedEntry, LEASED, NOTHING, type EntryRead } from '../../lib/core/cache-entry.js';
import type { LoadResult, WritePolicy } from '../../lib/core/cache-engine.types.js';
import { FAILED, type FailOpenStore, type LeaseOutcome } from '../../lib/core/fail-open-store.js';
import type { EntryReader } from '../../lib/core/read/entry-reader.js';
import { EarlyAttempt, LeaseSession } from '../../lib/core/read/lease-session.js';
import { ReadThrough, type RunningReads } from '../../lib/core/read/read-through.js';
import { SingleFlight } from '../../lib/core/single-flight.js';
import type { CacheEventPublisher } from '../../lib/events/cache-event-publisher.js';
import type { LoadPolicy } from '../../lib/options/resolve-load-options.js';
import type { NamespaceSubscription } from '../../lib/store/cache-store.js';
import { CommandTimeoutError } from '../../lib/store/redis-cache.store.js';
import type { WakeReason } from '../../lib/store/lease-waiters.js';

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
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Everything below the read-through, scripted per test; the GET answers when `answerGet` is called. */
class Fakes {
  /** What the GET answers: a payload decoded as `decoded`, null, or FAILED. */
  get: 'entry' | null | typeof FAILED = null;
  decoded: DecodedEntry | EntryRead = NOTHING;
  /** Set: what the reader answers once it checked the entry's tags (a Promise), instead of `decoded`. */
  checkedLater: EntryRead | undefined;
  rereads: EntryRead[] = [];
  /** What the early attempt answers. */
  early: LeaseOutcome = { status: 'acquired' };
  /** What each attempt sent after the read answers, in turn. */
  attempts: LeaseOutcome[] = [{ status: 'acquired' }];
  wakes: WakeReason[] = [];
  down = false;
  running = true;
  /** In order: 'get', 'early', 'acquire', 'reread', 'giveBack', 'cancel'. */
  readonly asked: string[] = [];
  readonly completed: { stored: boolean }[] = [];
  private answers: Array<() => void> = [];

  /** Answers every GET sent so far. */
  answerGet(): void {
    for (const answer of this.answers.splice(0)) answer();
  }

  parts() {
    const store = {
      read: (_key: string, _name: string, then: (payload: Buffer | null | typeof FAILED) => unknown) => {
        this.asked.push('get');
        return new Promise((resolve) =>
          this.answers.push(() => resolve(then(this.get === 'entry' ? Buffer.from('x') : this.get))),
        );
      },
    } as unknown as FailOpenStore;
    const reader = {
      decode: () => (this.checkedLater ? Promise.resolve(this.checkedLater) : this.decoded),
      read: async () => {
        this.asked.push('reread');
        return this.rereads.shift() ?? NOTHING;
      },
    } as unknown as EntryReader;
    const wake = () => ({
      wait: async () => this.wakes.shift() ?? 'timeout',
      cancel: () => this.asked.push('cancel'),
      carried: () => undefined,
    });
    const leases = {
      listening: true,
      listen: wake,
      attemptEarly: () => {
        this.asked.push('early');
        const session = { giveBack: async () => void this.asked.push('giveBack') } as unknown as LeaseSession;
        return new EarlyAttempt(session, KEY, Buffer.alloc(8), wake(), Promise.resolve(this.early));
      },
      acquire: async () => {
        this.asked.push('acquire');
        return this.attempts.shift() ?? { status: 'acquired' };
      },
      hold: async () => true,
      complete: async (_key: string, _token: Buffer, prepared: unknown) => {
        this.completed.push({ stored: prepared !== undefined });
      },
    } as unknown as LeaseSession;
    const running: RunningReads = {
      store,
      reader,
      leases,
      isDown: () => this.down,
      loadEpoch: () => 0,
      prepare: async () => ({ bytes: Buffer.from('entry'), pxMs: 60_000 }),
      foreignKey: () => undefined,
    };
    const events = {
      load: (_name: string, _key: string, _background: boolean, loader: () => Promise<unknown>) => loader(),
      refreshed: () => undefined,
      leaseWaited: () => undefined,
    } as unknown as CacheEventPublisher;
    return { events, warnOnce: () => undefined, running: () => (this.running ? running : undefined) };
  }
}

/** `callers` concurrent reads of KEY through one single-flight, the GET answered once all joined. */
async function stampede(fakes: Fakes, callers: number, flights = new SingleFlight<LoadResult<unknown>>()) {
  const readThrough = new ReadThrough(fakes.parts());
  let loads = 0;
  const loader = () => {
    loads++;
    return Promise.resolve('loaded');
  };
  const reads = Array.from({ length: callers }, () =>
    flights.run(KEY, (flight) => readThrough.run(KEY, loader, WRITE, POLICY, NAME, flight, performance.now())),
  );
  fakes.answerGet();
  const results = await Promise.all(reads);
  await settle();
  return { results, loads };
}

/**
 * A key read fresh for 1 s: a second round within that sends no early attempt, a round past it does.
 */
async function expectNoneWhileFresh(): Promise<void> {
  const fakes = new Fakes();
  fakes.get = 'entry';
  // Fresh for 1 s: the second round must come within it, which a loaded machine running every
  // project at once did not always do within the 30 ms this once allowed.
  fakes.decoded = entry('cached', 1_000);
  const flights = new SingleFlight<LoadResult<unknown>>();
  await stampede(fakes, 2, flights);
  fakes.asked.length = 0;
  await stampede(fakes, 2, flights);
  expect(fakes.asked).toEqual(['get']);
  await new Promise((resolve) => setTimeout(resolve, 1_050));
  fakes.asked.length = 0;
  fakes.decoded = NOTHING;
  await stampede(fakes, 2, flights);
  expect(fakes.asked).toEqual(['get', 'early', 'cancel']);
}

describe('the early lease attempt (read-through)', () => {
  it('a caller joining a cold read sends the attempt right behind the GET; the miss takes it, once', async () => {
    const fakes = new Fakes();
    const { results, loads } = await stampede(fakes, 3);
    expect(results).toEqual(Array(3).fill({ value: 'loaded', outcome: 'miss' }));
    expect(loads).toBe(1);
    // Sent before the GET answered, and used: no second attempt.
    expect(fakes.asked).toEqual(['get', 'early', 'cancel']);
    expect(fakes.completed).toEqual([{ stored: true }]);
  });

  it('a lone caller sends none: nothing tells a miss apart from a hit yet', async () => {
    const fakes = new Fakes();
    const { loads } = await stampede(fakes, 1);
    expect(loads).toBe(1);
    expect(fakes.asked).toEqual(['get', 'acquire', 'cancel']);
  });

  it('a held lease found early is waited for like any other, and its value served', async () => {
    const fakes = new Fakes();
    fakes.decoded = LEASED;
    fakes.early = { status: 'held', remainingMs: 1_000 };
    fakes.wakes = ['stored'];
    fakes.rereads = [found(entry('theirs', 60_000))];
    const { results, loads } = await stampede(fakes, 2);
    expect(results).toEqual(Array(2).fill(expect.objectContaining({ value: 'theirs', outcome: 'hit' })));
    expect(loads).toBe(0);
    expect(fakes.asked).toEqual(['get', 'early', 'cancel', 'reread']);
  });

  it('a hit drops it, giving back a lease it took (the value went between the GET and the attempt)', async () => {
    const fakes = new Fakes();
    fakes.get = 'entry';
    fakes.decoded = entry('cached', 60_000);
    const { results, loads } = await stampede(fakes, 2);
    expect(results).toEqual(Array(2).fill(expect.objectContaining({ value: 'cached', outcome: 'hit' })));
    expect(loads).toBe(0);
    expect(fakes.asked).toEqual(['get', 'early', 'cancel', 'giveBack']);
  });

  it('a hit that found the lease held drops it without giving anything back', async () => {
    const fakes = new Fakes();
    fakes.get = 'entry';
    fakes.decoded = entry('cached', 60_000);
    fakes.early = { status: 'held', remainingMs: 1_000 };
    await stampede(fakes, 2);
    expect(fakes.asked).toEqual(['get', 'early', 'cancel']);
  });

  it('a key whose last value read here is still fresh sends none, and one past it does again', async () => {
    await expectNoneWhileFresh();
  });

  it('goes by how long the value stays fresh, whatever the wall clock says against the monotonic one', async () => {
    // The wall clock 10 s ahead of timeOrigin + performance.now(): what NTP does to a process that
    // runs for days. The entries' fresh-until is wall-clock time, like every writer's.
    const realNow = Date.now.bind(Date);
    const wall = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 10_000);
    try {
      await expectNoneWhileFresh();
    } finally {
      wall.mockRestore();
    }
  });

  it('a value checked later (tags) that is fresh drops it too, and keeps the next read from sending one', async () => {
    const fakes = new Fakes();
    fakes.get = 'entry';
    const flights = new SingleFlight<LoadResult<unknown>>();
    fakes.checkedLater = found(entry('tagged', 60_000));
    const { results } = await stampede(fakes, 2, flights);
    expect(results).toEqual(Array(2).fill(expect.objectContaining({ value: 'tagged', outcome: 'hit' })));
    expect(fakes.asked).toEqual(['get', 'early', 'cancel', 'giveBack']);
    fakes.asked.length = 0;
    await stampede(fakes, 2, flights);
    expect(fakes.asked).toEqual(['get']);
  });

  it('an expired entry is leased on its own stamp: the early attempt is dropped', async () => {
    const fakes = new Fakes();
    fakes.get = 'entry';
    fakes.decoded = entry('old', -1_000);
    fakes.early = { status: 'changed' };
    const { loads } = await stampede(fakes, 2);
    expect(loads).toBe(1);
    expect(fakes.asked).toEqual(['get', 'early', 'cancel', 'acquire', 'cancel']);
  });

  it('a failed read drops it and takes the lease the usual way (outcome error)', async () => {
    const fakes = new Fakes();
    fakes.get = FAILED;
    const { results } = await stampede(fakes, 2);
    expect(results).toEqual(Array(2).fill({ value: 'loaded', outcome: 'error' }));
    // The lease the early attempt took goes back; the usual attempt (sent at once) takes it again.
    expect(fakes.asked).toEqual(['get', 'early', 'cancel', 'acquire', 'giveBack', 'cancel']);
  });

  it('a failed read during an outage drops it and goes to the method', async () => {
    const fakes = new Fakes();
    fakes.get = FAILED;
    const readThrough = new ReadThrough(fakes.parts());
    const flights = new SingleFlight<LoadResult<unknown>>();
    const loader = () => Promise.resolve('loaded');
    const reads = [1, 2].map(() =>
      flights.run(KEY, (flight) => readThrough.run(KEY, loader, WRITE, POLICY, NAME, flight)),
    );
    // Down once the attempt went out: the read fails and the outage path answers.
    fakes.down = true;
    fakes.answerGet();
    expect(await Promise.all(reads)).toEqual(Array(2).fill({ value: 'loaded', outcome: 'error' }));
    await settle();
    expect(fakes.asked).toEqual(['get', 'early', 'cancel', 'giveBack']);
  });

  it('none is sent while Redis is down', async () => {
    const fakes = new Fakes();
    fakes.get = FAILED;
    fakes.down = true;
    const { results } = await stampede(fakes, 2);
    expect(results).toEqual(Array(2).fill({ value: 'loaded', outcome: 'error' }));
    expect(fakes.asked).toEqual(['get']);
  });

  it('an early attempt that failed is sent again, the usual way (where a failure counts)', async () => {
    const fakes = new Fakes();
    fakes.early = { status: 'failed' };
    const { loads } = await stampede(fakes, 2);
    expect(loads).toBe(1);
    expect(fakes.asked).toEqual(['get', 'early', 'cancel', 'acquire', 'cancel']);
    expect(fakes.completed).toEqual([{ stored: true }]);
  });

  it('stopped while the GET was out: dropped, and the method runs without a lease', async () => {
    const fakes = new Fakes();
    const readThrough = new ReadThrough(fakes.parts());
    const flights = new SingleFlight<LoadResult<unknown>>();
    const loader = () => Promise.resolve('loaded');
    const reads = [1, 2].map(() =>
      flights.run(KEY, (flight) => readThrough.run(KEY, loader, WRITE, POLICY, NAME, flight)),
    );
    fakes.running = false;
    fakes.answerGet();
    expect(await Promise.all(reads)).toEqual(Array(2).fill({ value: 'loaded', outcome: 'miss' }));
    await settle();
    expect(fakes.asked).toEqual(['get', 'early', 'cancel', 'giveBack']);
  });

  it('a caller joining a read of a stopped cache sends none', async () => {
    const fakes = new Fakes();
    const readThrough = new ReadThrough(fakes.parts());
    const flights = new SingleFlight<LoadResult<unknown>>();
    const loader = () => Promise.resolve('loaded');
    const first = flights.run(KEY, (flight) => readThrough.run(KEY, loader, WRITE, POLICY, NAME, flight));
    fakes.running = false;
    const second = flights.run(KEY, (flight) => readThrough.run(KEY, loader, WRITE, POLICY, NAME, flight));
    fakes.answerGet();
    await Promise.all([first, second]);
    expect(fakes.asked).toEqual(['get']);
  });
});

/** A lease session on a faked store and subscription; what it was asked, in order. */
function session(acquireLease: () => Promise<unknown>) {
  const asked: string[] = [];
  const store = {
    store: { acquireLease },
    giveBack: async () => void asked.push('giveBack'),
  } as unknown as FailOpenStore;
  const listener = {
    channel: 'ns:@db0:lease',
    listening: true,
    listen: () => ({ wait: async () => 'timeout', carried: () => undefined, cancel: () => asked.push('cancel') }),
  } as unknown as NamespaceSubscription;
  return { leases: new LeaseSession({ store, listener }), asked };
}

describe('LeaseSession.attemptEarly', () => {
  it('answers what the store answers, with the token it sent; dropping gives back a lease it took', async () => {
    let sent: Buffer | undefined;
    const { leases, asked } = session(async (...args: unknown[]) => {
      sent = args[1] as Buffer;
      return { status: 'acquired' };
    });
    const early = leases.attemptEarly(KEY, 10_000);
    expect(await early.outcome).toEqual({ status: 'acquired' });
    expect(early.token).toBe(sent);
    early.drop();
    await settle();
    expect(asked).toEqual(['cancel', 'giveBack']);
  });

  it('a refused attempt answers failed, uncounted; it took nothing, so nothing goes back', async () => {
    const { leases, asked } = session(() => Promise.reject(new Error('READONLY')));
    const early = leases.attemptEarly(KEY, 10_000);
    expect(await early.outcome).toEqual({ status: 'failed' });
    await settle();
    expect(asked).toEqual([]);
  });

  it('a timed-out attempt gives back only once the client is done with the command', async () => {
    let done: () => void = () => undefined;
    const settled = new Promise<void>((resolve) => (done = resolve));
    const { leases, asked } = session(() => Promise.reject(new CommandTimeoutError('timed out', settled)));
    expect(await leases.attemptEarly(KEY, 10_000).outcome).toEqual({ status: 'failed' });
    await settle();
    expect(asked).toEqual([]);
    done();
    await settle();
    expect(asked).toEqual(['giveBack']);
  });

  it('a store that throws at once answers failed too: the joining caller never sees it', async () => {
    const { leases } = session(() => {
      throw new Error('not connected');
    });
    expect(await leases.attemptEarly(KEY, 10_000).outcome).toEqual({ status: 'failed' });
  });
});
