import type { TestClock } from './test-clock.js';

/** What a key holds: a string (bytes) or, for the prefix markers, a sorted set whose scores are all 0. */
type Value = { type: 'string'; bytes: Buffer } | { type: 'zset'; members: Set<string> };

interface Slot {
  value: Value;
  /** When the key expires, on the clock's time (ms); undefined: never. */
  expiresAt: number | undefined;
}

/** Redis's reply to a command on a key of the wrong type. */
export class WrongTypeError extends Error {
  constructor() {
    super('WRONGTYPE Operation against a key holding the wrong kind of value');
  }
}

/**
 * The Redis commands the cache's scripts use, on keys held in a Map: strings and one kind of sorted set
 * (members ordered by their bytes, as a set of equal scores is), each with an expiry on the test clock.
 * A key past its expiry is gone, as Redis's lazy expiry makes it look; `sweep` forgets them.
 */
export class InMemoryKeyspace {
  private readonly slots = new Map<string, Slot>();

  constructor(private readonly clock: TestClock) {}

  /** `'string'`, `'zset'`, or undefined when the key is absent. */
  type(key: string): Value['type'] | undefined {
    return this.live(key)?.value.type;
  }

  exists(key: string): boolean {
    return this.live(key) !== undefined;
  }

  /** GET: the bytes (the stored Buffer: callers copy before handing it out), or null. */
  get(key: string): Buffer | null {
    const slot = this.live(key);
    if (!slot) return null;
    if (slot.value.type !== 'string') throw new WrongTypeError();
    return slot.value.bytes;
  }

  /**
   * SET with PX `px` (ms), KEEPTTL (`px` undefined and `keepTtl`) or no expiry; `nx`: only when absent.
   * Resolves to whether it was set.
   */
  set(key: string, bytes: Buffer | string, options: { px?: number; keepTtl?: boolean; nx?: boolean } = {}): boolean {
    const slot = this.live(key);
    if (options.nx && slot) return false;
    const expiresAt =
      options.px !== undefined ? this.clock.now() + options.px : options.keepTtl ? slot?.expiresAt : undefined;
    const copy = typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes);
    this.slots.set(key, { value: { type: 'string', bytes: copy }, expiresAt });
    return true;
  }

  /** SETRANGE: overwrites bytes at `offset` of a string, keeping its TTL. */
  setRange(key: string, offset: number, bytes: Buffer): void {
    const slot = this.live(key);
    if (!slot) {
      this.set(key, Buffer.concat([Buffer.alloc(offset), bytes]));
      return;
    }
    if (slot.value.type !== 'string') throw new WrongTypeError();
    const current = slot.value.bytes;
    const grown = current.length >= offset + bytes.length ? current : Buffer.concat([current], offset + bytes.length);
    if (grown !== current) grown.fill(0, current.length);
    bytes.copy(grown, offset);
    slot.value = { type: 'string', bytes: grown };
  }

  del(key: string): boolean {
    const existed = this.exists(key);
    this.slots.delete(key);
    return existed;
  }

  /** PTTL: ms left, -1 without an expiry, -2 when absent. */
  pttl(key: string): number {
    const slot = this.live(key);
    if (!slot) return -2;
    if (slot.expiresAt === undefined) return -1;
    return Math.max(0, Math.round(slot.expiresAt - this.clock.now()));
  }

  /** PEXPIRE: whether the key existed. */
  pexpire(key: string, ms: number): boolean {
    const slot = this.live(key);
    if (!slot) return false;
    slot.expiresAt = this.clock.now() + ms;
    return true;
  }

  /** ZADD with score 0 (a new key has no expiry). */
  zadd(key: string, member: string): void {
    let slot = this.live(key);
    if (!slot) this.slots.set(key, (slot = { value: { type: 'zset', members: new Set() }, expiresAt: undefined }));
    this.members(slot).add(member);
  }

  zrem(key: string, member: string): void {
    const slot = this.live(key);
    if (slot) this.members(slot).delete(member);
    if (slot && this.members(slot).size === 0) this.slots.delete(key);
  }

  zcard(key: string): number {
    const slot = this.live(key);
    return slot ? this.members(slot).size : 0;
  }

  /** ZRANGE 0 -1: every member, ordered by its bytes. */
  zrange(key: string): string[] {
    const slot = this.live(key);
    if (!slot) return [];
    return [...this.members(slot)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  /** ZREMRANGEBYLEX key [min [max: removes the members between `min` and `max` (bytes), both included. */
  zremrangebylex(key: string, min: Buffer, max: Buffer): void {
    for (const member of this.zrange(key)) {
      const bytes = Buffer.from(member);
      if (Buffer.compare(bytes, min) >= 0 && Buffer.compare(bytes, max) <= 0) this.zrem(key, member);
    }
  }

  /** Every key not expired, in insertion order. */
  keys(): string[] {
    return [...this.slots.keys()].filter((key) => this.live(key) !== undefined);
  }

  /** Forgets the keys past their expiry (a read would not see them anyway). */
  sweep(): void {
    for (const key of [...this.slots.keys()]) this.live(key);
  }

  /** The key's slot, unless it expired (then it is dropped). */
  private live(key: string): Slot | undefined {
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    // Expired once the clock is past the expiry time, as Redis judges it.
    if (slot.expiresAt !== undefined && slot.expiresAt < this.clock.now()) {
      this.slots.delete(key);
      return undefined;
    }
    return slot;
  }

  private members(slot: Slot): Set<string> {
    if (slot.value.type !== 'zset') throw new WrongTypeError();
    return slot.value.members;
  }
}
