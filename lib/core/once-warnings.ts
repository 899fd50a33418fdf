/** How many distinct (name, topic) warnings are remembered, and so logged. */
const MAX_WARNINGS = 1_000;

/**
 * Warnings logged once per cache name and topic: the first failure of a kind is logged, later ones are
 * only counted in stats (a log line per call would flood the logs exactly when something is wrong).
 */
export class OnceWarnings {
  private readonly seen = new Set<string>();

  constructor(private readonly warn: (message: string) => void) {}

  /** Logs advice about what a name caches (`topic`), once per name. */
  adviseOnce(name: string, topic: string, message: string): void {
    if (this.first(name, topic)) this.warn(message);
  }

  /** Logs the first failure of a kind (`topic`) per name, with what was thrown. */
  warnOnce(name: string, topic: string, message: string, err: unknown): void {
    if (!this.first(name, topic)) return;
    this.warn(
      `${message} (${err instanceof Error ? err.message : String(err)}); further ones for ${name} are only counted`,
    );
  }

  /** Bounded: past MAX_WARNINGS kinds of warning (names built per call), the rest are only counted. */
  private first(name: string, topic: string): boolean {
    const key = `${name}|${topic}`;
    if (this.seen.has(key) || this.seen.size >= MAX_WARNINGS) return false;
    this.seen.add(key);
    return true;
  }
}
