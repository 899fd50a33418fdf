import { redactSecrets } from './connection-problems.js';

/** Where the store reports what happened; the Nest side passes its Logger. */
export interface HealthLogger {
  warn(message: string): void;
  log(message: string): void;
}

/** A command's target when it is not one Cluster node: the one server, or the client as a whole. */
export const ANYWHERE = '*';
/**
 * A Cluster command without a key (PUBLISH): ioredis sends it to a node of its choosing, so its
 * outcome says nothing about any one node. It ends no node's outage and starts none.
 */
export const SOME_NODE = '?';

/**
 * Tracks whether Redis is reachable so an outage is logged once when it starts and once when it
 * ends, however many calls fail in between (a log line per call would flood the logs exactly when
 * the team is busiest). On a Cluster it tracks each node: one primary lost is one outage, which
 * answers from the other primaries neither end nor restart.
 */
export class ConnectionHealth {
  /** Where commands fail now: Cluster nodes ('host:port'), or ANYWHERE. The outage lasts while any does. */
  private readonly down = new Set<string>();
  private downSince = 0;
  private failuresThisOutage = 0;
  /** Set when the app closes: what fails after that is the connection being closed, not an outage. */
  private closed = false;
  /** Called once when an outage ends (the cache replays what it could not invalidate). */
  onRecovered: (() => void) | undefined;
  /** Called once when an outage starts, with its reason as logged. */
  onDown: ((reason: string) => void) | undefined;

  constructor(private readonly logger: HealthLogger) {}

  get isDown(): boolean {
    return this.down.size > 0;
  }

  /** Whether commands to `node` fail (or the client as a whole does): the store probes it one command at a time. */
  isDownAt(node: string): boolean {
    return this.down.has(node) || this.down.has(ANYWHERE);
  }

  failed(reason: unknown, node = ANYWHERE): void {
    if (this.closed) return;
    this.failuresThisOutage++;
    const wasDown = this.isDown;
    this.down.add(node);
    if (wasDown) return;
    this.downSince = Date.now();
    const described = describe(reason);
    this.logger.warn(`Redis cache unavailable (${described}); calls go to the source until it recovers`);
    this.onDown?.(described);
  }

  succeeded(node = ANYWHERE): void {
    if (this.closed || !this.isDown || node === SOME_NODE) return;
    // An answer shows the client connected (ANYWHERE is over); on one server it ends the outage.
    if (node === ANYWHERE) this.down.clear();
    this.down.delete(node);
    this.down.delete(ANYWHERE);
    this.endIfUp();
  }

  /**
   * The app is closing: commands still in flight fail against a connection the module is closing (or
   * the user is ending), which says nothing about Redis. Nothing is logged or announced from now on.
   */
  close(): void {
    this.closed = true;
  }

  /** Forgets the nodes not in `current` (a failover replaced them): their outage ended with them. */
  retainNodes(current: ReadonlySet<string>): void {
    for (const node of this.down) if (node !== ANYWHERE && !current.has(node)) this.down.delete(node);
    this.endIfUp();
  }

  private endIfUp(): void {
    if (this.isDown) return;
    const seconds = ((Date.now() - this.downSince) / 1_000).toFixed(1);
    this.logger.log(
      `Redis cache recovered after ${seconds}s (${this.failuresThisOutage} failed commands or connection attempts)`,
    );
    this.failuresThisOutage = 0;
    this.onRecovered?.();
  }
}

/** The reason as logged: never with a password (a URL in an error's text is masked). */
function describe(reason: unknown): string {
  if (reason instanceof Error) {
    const cause = reason.cause instanceof Error ? `: ${reason.cause.message}` : '';
    return redactSecrets(`${reason.message}${cause}`);
  }
  return redactSecrets(String(reason));
}
