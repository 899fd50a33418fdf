import type { AuditProgress } from './audit-options.js';
import { formatCount } from './human-report.js';

/** Where the bar is drawn: a terminal's stderr. */
export interface ProgressStream {
  write(text: string): unknown;
}

/** Redraws at most this often: a terminal drawing every batch would slow the scan it shows. */
const REDRAW_MS = 100;
const BAR_WIDTH = 24;

/**
 * A one-line progress display of a scan, redrawn in place (`\r`): keys scanned of DBSIZE with a bar
 * when the total is known, and the rate. `finish()` erases it, so the report that follows (on
 * stdout, maybe the same terminal) starts on a clean line.
 */
export class ScanProgress {
  private readonly startedAt: number;
  private drawnAt = -Infinity;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.startedAt = now();
  }

  /** Takes a progress report; draws it unless the last drawing is too recent (`force` draws anyway). */
  update(progress: AuditProgress, force = false): void {
    const at = this.now();
    if (!force && at - this.drawnAt < REDRAW_MS) return;
    this.drawnAt = at;
    this.drawn = true;
    this.stream.write(`\r${renderProgress(progress, at - this.startedAt)}\x1b[K`);
  }

  /** Erases the line, if anything was drawn. */
  finish(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

/** `[#########---------------]  38%  380,000 / 1,000,000 keys  190,000 keys/s`. */
export function renderProgress({ scanned, total }: AuditProgress, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? `  ${formatCount(Math.round((scanned * 1000) / elapsedMs))} keys/s` : '';
  if (total === undefined || total === 0) return `Scanning: ${formatCount(scanned)} keys${rate}`;
  // SCAN may return a key twice while Redis resizes a table: never past 100%.
  const share = Math.min(1, scanned / total);
  const filled = Math.round(share * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
  const pct = `${Math.floor(share * 100)}%`.padStart(4);
  return `${bar} ${pct}  ${formatCount(scanned)} / ${formatCount(total)} keys${rate}`;
}
