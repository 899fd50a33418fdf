import { SingleFlight } from '../../lib/core/single-flight.js';

const sizeOf = (flights: SingleFlight<unknown>) =>
  (flights as unknown as { inFlight: Map<string, unknown> }).inFlight.size;

describe('SingleFlight', () => {
  it('shares one piece of work among concurrent callers of a key, and starts anew once it settled', async () => {
    const flights = new SingleFlight<number>();
    let runs = 0;
    const work = () => new Promise<number>((resolve) => setTimeout(() => resolve(++runs), 5));
    const first = await Promise.all([flights.run('k', work), flights.run('k', work), flights.run('k', work)]);
    expect(first).toEqual([1, 1, 1]);
    expect(await flights.run('k', work)).toBe(2);
  });

  it('keeps at most about 10,000 idle holders, however many keys went through', async () => {
    const flights = new SingleFlight<number>();
    for (let i = 0; i < 25_000; i++) await flights.run(`key-${i}`, async () => i);
    expect(sizeOf(flights)).toBeLessThanOrEqual(10_001);
  });

  it('never sweeps holders of work still running', async () => {
    const flights = new SingleFlight<number>();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const running = Array.from({ length: 12_000 }, (_, i) => flights.run(`busy-${i}`, () => gate.then(() => i)));
    // A caller of a busy key still joins its work after the sweeps that 12,000 keys caused.
    let extra = 0;
    const joined = flights.run('busy-3', async () => ++extra);
    release();
    expect(await joined).toBe(3);
    expect(extra).toBe(0);
    expect((await Promise.all(running)).length).toBe(12_000);
  });

  it('a superseded load is left to its callers: the next caller starts a fresh one', async () => {
    const flights = new SingleFlight<string>();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let superseded: boolean | undefined;
    const old = flights.run('k', async (flight) => {
      await gate;
      superseded = flight.superseded;
      return 'old';
    });
    flights.supersede('k');
    expect(await flights.run('k', async () => 'fresh')).toBe('fresh');
    release();
    expect(await old).toBe('old');
    expect(superseded).toBe(true);
  });

  it('running() gives the work while it runs; the answer its callers shared goes when it settles', async () => {
    const flights = new SingleFlight<number>();
    let release!: (value: number) => void;
    const work = flights.run('k', () => new Promise<number>((resolve) => (release = resolve)));
    const flight = flights.running('k')!;
    expect(flight.promise).toBe(work);
    expect(flights.running('other')).toBeUndefined();
    flight.answered = { site: {}, answer: undefined, promise: work, starts: [], traces: [] };
    release(1);
    await work;
    expect(flights.running('k')).toBeUndefined();
    expect(flight.answered).toBeUndefined();
    // The holder is reused by the key's next work, with nothing of the last one's answer.
    void flights.run('k', async () => 2);
    expect(flights.running('k')).toBe(flight);
    expect(flight.answered).toBeUndefined();
  });
});
