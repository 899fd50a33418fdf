// Single-flight per item across batches (core/read/batch-flights.ts): a running load is joined, and a
// load that settled after a batch's read was sent (a Cluster read answered late) is still handed to it.
import { BatchFlights, NOT_LOADED } from '../../lib/core/read/batch-flights.js';

describe('BatchFlights', () => {
  it('hands a running load to the batches that miss its keys, until it settles', async () => {
    const flights = new BatchFlights();
    const read = flights.startRead();
    const settle = flights.claim(['a', 'b']);
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
    const settle = flights.claim(['a']);
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
    const settle = flights.claim(['a']);
    const joined = flights.joined('a', read);
    settle(NOT_LOADED);
    expect(await joined).toBe(NOT_LOADED);
    expect(flights.joined('a', read)).toBeUndefined();
  });
});
