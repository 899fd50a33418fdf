/** Where the store reports what happened; the Nest side passes its Logger. */
export interface HealthLogger {
  warn(message: string): void;
  log(message: string): void;
}

/**
 * Tracks whether Redis is reachable so an outage is logged once when it starts and once when it
 * ends, however many calls fail in between (a log line per call would flood the logs exactly when
 * the team is busiest).
 */
export class ConnectionHealth {
  private down = false;
  private downSince = 0;
  private failuresThisOutage = 0;
  /** Called once when an outage ends (the cache replays what it could not invalidate). */
  onRecovered: (() => void) | undefined;

  constructor(private readonly logger: HealthLogger) {}

  get isDown(): boolean {
    return this.down;
  }

  failed(reason: unknown): void {
    this.failuresThisOutage++;
    if (this.down) return;
    this.down = true;
    this.downSince = Date.now();
    this.logger.warn(`Redis cache unavailable (${describe(reason)}); calls go to the source until it recovers`);
  }

  succeeded(): void {
    if (!this.down) return;
    const seconds = ((Date.now() - this.downSince) / 1_000).toFixed(1);
    this.logger.log(
      `Redis cache recovered after ${seconds}s (${this.failuresThisOutage} failed commands or connection attempts)`,
    );
    this.down = false;
    this.failuresThisOutage = 0;
    this.onRecovered?.();
  }
}

function describe(reason: unknown): string {
  if (reason instanceof Error) {
    const cause = reason.cause instanceof Error ? `: ${reason.cause.message}` : '';
    return `${reason.message}${cause}`;
  }
  return String(reason);
}
