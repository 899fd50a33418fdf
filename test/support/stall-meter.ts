/**
 * How long this process could not run while a call was being timed. On a shared 2-core machine
 * running the whole suite, a local cluster and a Sentinel deployment, the process is sometimes not
 * scheduled for hundreds of milliseconds (a CI run once timed a call at 647 ms against a Redis that
 * refused connections at once). A bound on a call's duration is a claim about what the call waits
 * for, so the fault tests compare it against the duration minus the time the process itself stood
 * still: a call that waited for two `commandTimeout`s is still caught, a descheduled process is not
 * blamed on the cache.
 *
 * A stall is measured as the lateness of a 5 ms interval timer: ticks late by more than
 * {@link LATE_TICK_MS} count their whole lateness, smaller jitter counts nothing. Waiting for a
 * timer or a socket does not delay the ticks, so it is never mistaken for a stall.
 */

const TICK_MS = 5;
const LATE_TICK_MS = 10;

let users = 0;
let timer: NodeJS.Timeout | undefined;
let lastTick = 0;
let stalledMs = 0;

function tick(): void {
  const now = performance.now();
  const late = now - lastTick - TICK_MS;
  if (late > LATE_TICK_MS) stalledMs += late;
  lastTick = now;
}

/** Starts measuring (reference-counted) and returns a function that stops and returns the stall since the start. */
export function measureStalls(): () => number {
  if (users++ === 0) {
    lastTick = performance.now();
    timer = setInterval(tick, TICK_MS);
    timer.unref();
  }
  const startedAt = stalledMs;
  let stopped = false;
  return () => {
    // A stall still in progress when the call ended is seen only by the next tick: take it now.
    tick();
    const stall = stalledMs - startedAt;
    if (!stopped && --users === 0) clearInterval(timer);
    stopped = true;
    return stall;
  };
}
