import { timed } from '../support/fault-helpers.js';

// The fault tests bound a call's `activeMs`: its duration minus the time the process could not run.
// Blocking the event loop must count as a stall, waiting for a timer must not.

function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('timed calls and stalls', () => {
  it('does not count the time the process stood still', async () => {
    const call = await timed(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      blockFor(300);
      await new Promise((resolve) => setTimeout(resolve, 20));
    });
    // Node's timers are whole milliseconds and may fire a fraction early on performance.now()'s scale.
    expect(call.ms).toBeGreaterThanOrEqual(338);
    // At least the blocked 300 ms (less a tick) is not the call's own, whatever else the machine did.
    expect(call.ms - call.activeMs).toBeGreaterThanOrEqual(290);
  });

  it('counts waiting for a timer or I/O as the call’s own time', async () => {
    const call = await timed(() => new Promise((resolve) => setTimeout(resolve, 300)));
    // Not discounted as a stall; the machine's own stalls meanwhile (a few ms, tens under load) are.
    expect(call.activeMs).toBeGreaterThanOrEqual(200);
  });

  it('sees a stall that ends with the call', async () => {
    const call = await timed(async () => {
      await Promise.resolve();
      blockFor(300);
    });
    expect(call.ms - call.activeMs).toBeGreaterThanOrEqual(290);
  });
});
