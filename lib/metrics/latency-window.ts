/** How many recent latencies each name keeps for its percentiles. */
const WINDOW = 1024;

/**
 * Latencies of the most recent calls in a fixed ring, so recording costs one array write and the
 * percentiles reflect current behaviour rather than the whole process lifetime.
 */
export class LatencyWindow {
  private readonly samples = new Float64Array(WINDOW);
  private next = 0;
  private filled = 0;
  private total = 0;
  private count = 0;
  private max = 0;

  record(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % WINDOW;
    if (this.filled < WINDOW) this.filled++;
    this.total += ms;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** Forgets every sample. */
  reset(): void {
    this.next = 0;
    this.filled = 0;
    this.total = 0;
    this.count = 0;
    this.max = 0;
  }

  summary(): LatencySummary {
    const recent = Array.from(this.samples.subarray(0, this.filled)).sort((a, b) => a - b);
    const at = (q: number) => (recent.length ? recent[Math.min(recent.length - 1, Math.floor(q * recent.length))] : 0);
    return {
      count: this.count,
      meanMs: round(this.count ? this.total / this.count : 0),
      p50Ms: round(at(0.5)),
      p99Ms: round(at(0.99)),
      maxMs: round(this.max),
    };
  }
}

/** Latency of the decorated calls, in milliseconds; percentiles over the last 1,024 calls. */
export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function round(ms: number): number {
  return Math.round(ms * 1_000) / 1_000;
}
