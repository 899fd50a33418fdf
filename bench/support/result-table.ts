import { medianRatio, type ContenderResult } from './async-harness.js';

/** How `printResultTable` heads its columns and what the ratio is taken against. */
export interface ResultTableOptions {
  /** The rate column's heading: `ops/s`, `batches/s`. */
  rate?: string;
  /** The ratio column's heading: `vs floor`, `ratio`. */
  ratio: string;
  /** What each row's ops/s is divided by (median of per-round ratios); undefined prints `-`. */
  baseline: ContenderResult | undefined;
  /** Width of the label column. */
  labelWidth?: number;
}

/** One row per contender of an interleaved run: median rate, pooled p50/p99, GC share and the ratio. */
export function printResultTable(results: readonly ContenderResult[], options: ResultTableOptions): void {
  const { rate = 'ops/s', ratio, baseline, labelWidth = 36 } = options;
  const widths = [labelWidth, Math.max(10, rate.length + 1), 9, 9, 6, Math.max(8, ratio.length + 1)];
  const row = (cells: string[]) =>
    cells.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join(' ');
  console.log(row(['variant', rate, 'p50 µs', 'p99 µs', 'GC', ratio]));
  for (const result of results) {
    console.log(
      row([
        result.label,
        Math.round(result.opsPerSec).toLocaleString('en-US'),
        (result.p50Ms * 1_000).toFixed(0),
        (result.p99Ms * 1_000).toFixed(0),
        `${(result.gcShare * 100).toFixed(0)}%`,
        baseline ? `${medianRatio(result, baseline).toFixed(2)}x` : '-',
      ]),
    );
  }
  console.log();
}
