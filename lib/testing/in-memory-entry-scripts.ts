import {
  ENTRY_HEADER_LENGTH,
  ENTRY_KIND,
  FRESH_UNTIL_OFFSET,
  LANDED_OFFSET,
  LEASE_KIND,
  LOAD_MS_OFFSET,
  PREVIOUS_FORMAT_KINDS,
  TOKEN_LENGTH,
  TOKEN_OFFSET,
  TOMBSTONE_KIND,
} from '../core/cache-entry.js';
import { PAYLOAD_MAGIC } from '../serialization/payload-header.js';
import type { Announcement, LeaseAttempt, WriteOutcome } from '../store/cache-store.js';
import { CARRIED_VALUE_MAX_BYTES, EMPTY_MARK, WAITED_BIT } from '../store/entry-scripts.js';
import type { InProcessBus } from './in-process-bus.js';
import type { InMemoryKeyspace } from './in-memory-keyspace.js';
import type { TestClock } from './test-clock.js';

/** What a key holds, as the scripts' `held()` tells (store/entry-scripts.ts). */
type Held = 'absent' | 'entry' | 'lease' | 'tombstone' | 'previous' | 'foreign';

const LEASE_DEADLINE_OFFSET = TOKEN_OFFSET + TOKEN_LENGTH;
const NO_TOKEN = Buffer.alloc(TOKEN_LENGTH);
const NO_LEASE = Buffer.alloc(TOKEN_LENGTH + 8);
const EMPTY = Buffer.alloc(0);

/**
 * store/entry-scripts.ts (ACQUIRE_LEASE, COMPLETE_LEASE, WRITE_ENTRY, EVICT_ENTRY) step by step on an
 * in-process keyspace, with GET beside them: what an entry's key holds, its header, its horizon.
 *
 * One translation: an entry's fresh-until is on the writer's clock (`Date.now()`), which the test
 * clock's `advance` does not move. The key keeps it on the store's clock (written with the clock's
 * advance added) and a GET hands it out as the writer's clock sees it now, so an entry ages by what
 * `advance` added; lease deadlines and expiry are on the test clock already. As that fresh-until is
 * also the entry's stamp (the version a refresh leases), the stamps handed out for the entry a key
 * holds are remembered: a read before an `advance` still names that version after it, as the bytes
 * the scripts compare never change.
 *
 * With `retain` false (the testing module's `disabled`) no value is ever kept: writes land nowhere
 * (still revoking a lease), and a load's completion gives its lease back without a value.
 */
export class InMemoryEntryScripts {
  /** Per key: the stored entry (its bytes, as kept) and the stamps GETs handed out for it. */
  private readonly handedOut = new Map<string, { stored: Buffer; stamps: Set<string> }>();

  constructor(
    private readonly keyspace: InMemoryKeyspace,
    private readonly clock: TestClock,
    private readonly bus: InProcessBus,
    private readonly retain: boolean,
  ) {}

  /** GET: a copy of the stored bytes, an entry's fresh-until as the writer's clock sees it now. */
  get(key: string): Buffer | null {
    const bytes = this.keyspace.get(key);
    if (bytes === null) return null;
    const presented = this.present(bytes);
    if (isEntry(bytes)) this.handOut(key, bytes, presented);
    return presented;
  }

  /** WRITE_ENTRY. */
  write(key: string, entry: Buffer, ttlMs: number, startEpoch: number, announce?: Announcement): WriteOutcome {
    const px = Math.max(1, Math.round(ttlMs));
    const start = Number(startEpoch.toFixed(0));
    const { state, head } = this.held(key);
    if (state === 'foreign') return 'foreign';
    const now = this.clock.micros();
    let outcome: WriteOutcome = 'written';
    if (horizon(state, head) >= start) {
      this.keyspace.set(key, header(TOMBSTONE_KIND, NO_TOKEN, 0, now), { px });
      outcome = 'tombstoned';
    } else if (this.retain) {
      this.keyspace.set(key, this.landed(entry, now), { px });
    } else {
      this.keyspace.del(key);
    }
    if (announce) this.bus.publish(announce.channel, announce.message);
    return outcome;
  }

  /** `SET key value PX ttl`, as another client would. */
  plainSet(key: string, payload: Buffer, ttlMs: number): void {
    if (this.retain) this.keyspace.set(key, this.onStoreClock(payload), { px: Math.max(1, Math.round(ttlMs)) });
  }

  /** ACQUIRE_LEASE. */
  acquireLease(key: string, token: Buffer, ttlMs: number, expectStamp: Buffer | ''): LeaseAttempt {
    const ttl = Math.max(1, Math.round(ttlMs));
    const expect = expectStamp === '' ? EMPTY : expectStamp;
    const { state, head } = this.held(key);
    if (state === 'foreign') return { status: 'foreign' };
    const now = Math.floor(this.clock.now());
    if (state === 'entry' || state === 'lease') {
      // Another version of the value than the caller saw (a newer one landed): read it, don't wait for its refresh.
      if (state === 'entry' && !this.sawVersion(key, head, expect)) return { status: 'changed' };
      const leaseUntil = head.readDoubleBE(LEASE_DEADLINE_OFFSET);
      if (leaseUntil > now) {
        // The caller will wait: the holder's release is published.
        const last = head[LEASE_DEADLINE_OFFSET - 1];
        if ((last & WAITED_BIT) === 0)
          this.keyspace.setRange(key, LEASE_DEADLINE_OFFSET - 1, Buffer.of(last | WAITED_BIT));
        // With the holder's token as it sent it (WAITED_BIT clear).
        const holder = Buffer.from(head.subarray(TOKEN_OFFSET, LEASE_DEADLINE_OFFSET));
        holder[TOKEN_LENGTH - 1] &= ~WAITED_BIT;
        return { status: 'held', remainingMs: Math.ceil(leaseUntil - now), holder };
      }
      if (state === 'entry') {
        this.keyspace.setRange(key, TOKEN_OFFSET, Buffer.concat([token, double(now + ttl)]));
        if (this.keyspace.pttl(key) < ttl) this.keyspace.pexpire(key, ttl);
        return { status: 'acquired' };
      }
    }
    // Nothing to serve: the caller saw a value there, which went (read again), or takes the lease.
    if (expect.length > 0) return { status: 'changed' };
    const placeholder = header(LEASE_KIND, token, now + ttl, horizon(state, head));
    if (state === 'absent') {
      // The lock proper: SET NX PX with the token.
      return this.keyspace.set(key, placeholder, { nx: true, px: ttl })
        ? { status: 'acquired' }
        : { status: 'changed' };
    }
    this.keyspace.set(key, placeholder, { px: Math.max(ttl, this.keyspace.pttl(key)) });
    return { status: 'acquired' };
  }

  /** COMPLETE_LEASE. */
  completeLease(key: string, token: Buffer, entry: Buffer | undefined, ttlMs: number, channel: string): boolean {
    const value = this.retain && entry !== undefined && entry.length > 0 ? entry : undefined;
    const { state, head } = this.held(key);
    const mine =
      (state === 'entry' || state === 'lease') && sameToken(head.subarray(TOKEN_OFFSET, LEASE_DEADLINE_OFFSET), token);
    const waited = !mine || (head[LEASE_DEADLINE_OFFSET - 1] & WAITED_BIT) !== 0;
    let carried: Buffer | undefined;
    if (mine) {
      if (value) {
        const stored = this.landed(value, this.clock.micros());
        this.keyspace.set(key, stored, { px: Math.max(1, Math.round(ttlMs)) });
        if (waited && stored.length <= CARRIED_VALUE_MAX_BYTES) {
          carried = Buffer.concat([Buffer.from(`${key}\0`), token, stored]);
        }
      } else if (state === 'lease') {
        const at = horizon(state, head);
        if (at > 0) this.keyspace.set(key, header(TOMBSTONE_KIND, NO_TOKEN, 0, at), { keepTtl: true });
        else this.keyspace.del(key);
      } else {
        this.keyspace.setRange(key, TOKEN_OFFSET, NO_LEASE);
      }
    }
    if (waited) this.bus.publish(channel, carried ?? (mine && !value ? key + EMPTY_MARK : key));
    return mine;
  }

  /** EVICT_ENTRY for each key, then `announce`: how many held a value (or a lease). */
  evict(keys: readonly string[], tombstoneMs: number, announce?: Announcement): number {
    const px = Math.max(1, Math.round(tombstoneMs));
    let evicted = 0;
    for (const key of keys) {
      const { state } = this.held(key);
      if (state === 'foreign') continue;
      this.keyspace.set(key, header(TOMBSTONE_KIND, NO_TOKEN, 0, this.clock.micros()), { px });
      if (state === 'entry' || state === 'lease' || state === 'previous') evicted++;
    }
    if (announce) this.bus.publish(announce.channel, announce.message);
    return evicted;
  }

  /** The keys that hold an entry (leased or not), sorted. */
  entryKeys(): string[] {
    return this.keyspace
      .keys()
      .filter((key) => this.held(key).state === 'entry')
      .sort();
  }

  /** Drops the stamps remembered for entries that are gone (replaced, deleted, expired). */
  forgetStamps(): void {
    for (const [key, version] of this.handedOut) {
      if (this.keyspace.type(key) !== 'string' || this.keyspace.get(key) !== version.stored) this.handedOut.delete(key);
    }
  }

  /** The scripts' `held()`: what `key` holds, and its header (up to 48 bytes). */
  private held(key: string): { state: Held; head: Buffer } {
    const type = this.keyspace.type(key);
    if (type === undefined) return { state: 'absent', head: EMPTY };
    // Another type answers WRONGTYPE: not ours.
    if (type !== 'string') return { state: 'foreign', head: EMPTY };
    const head = this.keyspace.get(key)!.subarray(0, ENTRY_HEADER_LENGTH);
    if (head.length > 0 && head[0] === PAYLOAD_MAGIC) {
      const kind = head[1];
      if (head.length === ENTRY_HEADER_LENGTH && kind === ENTRY_KIND) return { state: 'entry', head };
      if (head.length === ENTRY_HEADER_LENGTH && kind === LEASE_KIND) return { state: 'lease', head };
      if (head.length === ENTRY_HEADER_LENGTH && kind === TOMBSTONE_KIND) return { state: 'tombstone', head };
      if (head.length >= 30 && PREVIOUS_FORMAT_KINDS.includes(kind)) return { state: 'previous', head };
    }
    return { state: 'foreign', head };
  }

  /** The scripts' `landed()`: the entry with the time it lands as its horizon, its fresh-until on the store's clock. */
  private landed(entry: Buffer, at: number): Buffer {
    const stored = this.onStoreClock(entry);
    stored.writeDoubleBE(at, LANDED_OFFSET);
    return stored;
  }

  /** A copy of `bytes`; an entry's fresh-until moved from the writer's clock to the store's. */
  private onStoreClock(bytes: Buffer): Buffer {
    return shiftFreshUntil(bytes, this.clock.advancedMs);
  }

  /** A copy of stored bytes; an entry's fresh-until as the writer's clock sees it now. */
  private present(stored: Buffer): Buffer {
    return shiftFreshUntil(stored, -this.clock.advancedMs);
  }

  /** Remembers the stamp a GET of `key` handed out for the entry it holds (`stored`). */
  private handOut(key: string, stored: Buffer, presented: Buffer): void {
    let version = this.handedOut.get(key);
    if (version?.stored !== stored) this.handedOut.set(key, (version = { stored, stamps: new Set() }));
    version.stamps.add(presented.toString('hex', FRESH_UNTIL_OFFSET, LOAD_MS_OFFSET));
  }

  /** Whether `expect` is the stamp of the entry `key` holds (`head`) as a reader got it, now or before the clock moved. */
  private sawVersion(key: string, head: Buffer, expect: Buffer): boolean {
    if (this.present(head).subarray(FRESH_UNTIL_OFFSET, LOAD_MS_OFFSET).equals(expect)) return true;
    const version = this.handedOut.get(key);
    return version?.stored === this.keyspace.get(key) && version.stamps.has(expect.toString('hex'));
  }
}

/** Whether `bytes` is an entry with a value (kind ENTRY): the only kind with a fresh-until. */
function isEntry(bytes: Buffer): boolean {
  return bytes.length >= ENTRY_HEADER_LENGTH && bytes[0] === PAYLOAD_MAGIC && bytes[1] === ENTRY_KIND;
}

/** A copy of `bytes`, an entry's fresh-until moved by `ms`. */
function shiftFreshUntil(bytes: Buffer, ms: number): Buffer {
  const copy = Buffer.from(bytes);
  if (ms !== 0 && isEntry(copy)) {
    copy.writeDoubleBE(copy.readDoubleBE(FRESH_UNTIL_OFFSET) + ms, FRESH_UNTIL_OFFSET);
  }
  return copy;
}

/** The horizon a key's header carries (0: none): scripts' `horizon()`. */
function horizon(state: Held, head: Buffer): number {
  return state === 'entry' || state === 'lease' || state === 'tombstone' ? head.readDoubleBE(LANDED_OFFSET) : 0;
}

/** A header with nothing to serve: a lease placeholder or a tombstone (scripts' `header()`). */
function header(kind: number, token: Buffer, deadline: number, at: number): Buffer {
  const bytes = Buffer.alloc(ENTRY_HEADER_LENGTH);
  bytes[0] = PAYLOAD_MAGIC;
  bytes[1] = kind;
  token.copy(bytes, TOKEN_OFFSET);
  bytes.writeDoubleBE(deadline, LEASE_DEADLINE_OFFSET);
  bytes.writeDoubleBE(at, LANDED_OFFSET);
  return bytes;
}

function double(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleBE(value);
  return bytes;
}

/** Two lease tokens are one when they differ at most in WAITED_BIT (COMPLETE_LEASE). */
function sameToken(held: Buffer, token: Buffer): boolean {
  const last = held.length - 1;
  return (
    held.length === token.length &&
    held.subarray(0, last).equals(token.subarray(0, last)) &&
    (held[last] | WAITED_BIT) === (token[last] | WAITED_BIT)
  );
}
