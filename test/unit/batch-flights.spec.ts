// Single-flight per item across batches (core/read/batch-flights.ts): a running load is joined, and a
// load that settled after a batch's read was sent (a Cluster read answered late) is still handed to it;
// a write or an invalidation of a key detaches its load, running or landed.
import { BatchFlights, NOT_LOADED } from '../../lib/core/read/batch-flights.js';

describe('BatchFlights', () => {
  it('hands a running load to the batches that miss its keys, until it settles', async () => {
    const flights = new BatchFlights();
    const read = flights.startRead();
    const settle = flights.claim(['a', 'b'], false);
    const joined = flights.joined('b', read);
    expect(joined).toBeInstanceOf(Promise);
    flights.endRead(read);
    settle([1, 2]);
    expect(await joined).toEqual({ value: 2 });
    // No read was pending when it settled: nothing is kept.
    expect(flights.joined('b', flights.startRead())).toBeUndefined();
  });

  it('keeps a settled value for reads sent before it settled, until they were looked at', () => {
    const flights = new BatchFlights();
    const early = flights.startRead();
    const settle = flights.claim(['a'], false);
    settle(['A']);
    const late = flights.startRead();
    expect(flights.joined('a', early)).toEqual({ value: 'A' });
    // A read sent after the load settled sees its write in Redis.
    expect(flights.joined('a', late)).toBeUndefined();
    flights.endRead(early);
    expect(flights.joined('a', early)).toBeUndefined();
    flights.endRead(late);
  });

  it('a load that ended without values hands NOT_LOADED to its waiters and keeps nothing', async () => {
    const flights = new BatchFlights();
    const read = flights.startRead();
    const settle = flights.claim(['a'], false);
    const joined = flights.joined('a', read);
    settle(NOT_LOADED);
    expect(await joined).toBe(NOT_LOADED);
    expect(flights.joined('a', read)).toBeUndefined();
  });

  it('a superseded key is loaded again: its running load is not joined, its landed value not handed out', async () => {
    const flights = new BatchFlights();
    const early = flights.startRead();
    const settle = flights.claim(['ns:a', 'ns:b'], false);
    const joined = flights.joined('ns:a', early);
    flights.supersede('ns:a');
    // A batch that misses `ns:a` from now on loads it; `ns:b` is still joined.
    expect(flights.joined('ns:a', flights.startRead())).toBeUndefined();
    expect(flights.joined('ns:b', early)).toBeInstanceOf(Promise);
    settle(['old a', 'b']);
    // The claiming batch's own waiters (they asked before the change) get its value...
    expect(await joined).toEqual({ value: 'old a' });
    // ...but it is not kept for reads sent before it settled, unlike `ns:b`'s.
    expect(flights.joined('ns:a', early)).toBeUndefined();
    expect(flights.joined('ns:b', early)).toEqual({ value: 'b' });
    // A new claim of the key after the supersede is joined as usual.
    const again = flights.claim(['ns:a'], false);
    expect(flights.joined('ns:a', early)).toBeInstanceOf(Promise);
    again(['new a']);
  });

  it('supersedes landed values too, by key, by prefix and for tagged loads', () => {
    const flights = new BatchFlights();
    const early = flights.startRead();
    flights.claim(['ns:user:1', 'ns:post:1'], false)(['u', 'p']);
    flights.claim(['ns:tagged:1'], true)(['t']);
    expect(flights.joined('ns:user:1', early)).toEqual({ value: 'u' });
    flights.supersedeTagged();
    expect(flights.joined('ns:tagged:1', early)).toBeUndefined();
    expect(flights.joined('ns:post:1', early)).toEqual({ value: 'p' });
    flights.supersedePrefix('ns:user:');
    expect(flights.joined('ns:user:1', early)).toBeUndefined();
    expect(flights.joined('ns:post:1', early)).toEqual({ value: 'p' });
    flights.supersede('ns:post:1');
    expect(flights.joined('ns:post:1', early)).toBeUndefined();
  });

  it('supersedes running loads by prefix and for tagged loads only', () => {
    const flights = new BatchFlights();
    const read = flights.startRead();
    flights.claim(['ns:user:1'], false);
    flights.claim(['ns:tagged:1'], true);
    flights.supersedeTagged();
    expect(flights.joined('ns:tagged:1', read)).toBeUndefined();
    expect(flights.joined('ns:user:1', read)).toBeInstanceOf(Promise);
    flights.supersedePrefix('ns:user:');
    expect(flights.joined('ns:user:1', read)).toBeUndefined();
  });
});
