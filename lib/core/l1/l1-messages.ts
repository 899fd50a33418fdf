import { randomBytes } from 'node:crypto';
import type { BookkeepingKeys } from '../bookkeeping-keys.js';
import type { TagAnnouncement } from '../invalidation/cache-tags.js';
import { PREFIX } from '../invalidation/prefix-generations.js';
import type { RedisClock } from '../redis-clock.js';

/** A normalised tag as a message may carry it (cache-tags.ts `normalizeTags`). */
const TAG = /^[A-Za-z0-9:_\-.{}#]{1,512}$/;
/** An instance's origin: 6 random bytes, base64url. */
const ORIGIN = /^[A-Za-z0-9_-]{8}$/;

/** What another instance's message says it invalidated. */
export type L1Message =
  | { kind: 'keys'; keys: string[] }
  | { kind: 'tags'; epoch: number; tags: string[] }
  | { kind: 'reclaim'; fullPrefix: string };

/**
 * The messages of the namespace's L1 channel (docs/l1-coherence.md): `origin k keys...`,
 * `origin t epoch tags...`, `origin r prefix`, written by this instance and read from the others.
 * Keys and tags never contain spaces (unusual ones are hashed). A message is untrusted input: what no
 * instance would send is rejected, never acted on.
 */
export class L1Messages {
  /** Identifies this instance's messages, which it ignores (it applied them already). */
  private readonly origin = randomBytes(6).toString('base64url');

  constructor(
    private readonly keys: BookkeepingKeys,
    private readonly clock: RedisClock,
  ) {}

  /** This instance wrote or evicted `redisKeys`. */
  keysMessage(redisKeys: readonly string[]): string {
    return `${this.origin} k ${redisKeys.join(' ')}`;
  }

  /** How a tag invalidation announces its tags and epoch (CacheTags.invalidate adds the epoch). */
  tagsAnnouncement(channel: string, tags: readonly string[]): TagAnnouncement {
    return { channel, head: `${this.origin} t`, tail: tags.join(' ') };
  }

  /** Every key under `fullPrefix` was deleted. */
  reclaimMessage(fullPrefix: string): string {
    return `${this.origin} r ${fullPrefix}`;
  }

  /**
   * What a message says: `own` for this instance's own, `rejected` for what no instance would send — a
   * key outside the namespace or of the module's own, a tag or prefix that normalising could not
   * produce, an epoch Redis's clock cannot have reached.
   */
  parse(message: string): L1Message | 'own' | 'rejected' {
    const parts = message.split(' ');
    if (parts[0] === this.origin) return 'own';
    if (parts.length < 3 || !ORIGIN.test(parts[0])) return 'rejected';
    switch (parts[1]) {
      case 'k': {
        const keys = parts.slice(2);
        return keys.every((key) => this.keys.isEntryKey(key)) ? { kind: 'keys', keys } : 'rejected';
      }
      case 't': {
        const epoch = Number(parts[2]);
        const tags = parts.slice(3);
        const valid = this.clock.plausible(epoch) && tags.length > 0 && tags.every((tag) => TAG.test(tag));
        return valid ? { kind: 'tags', epoch, tags } : 'rejected';
      }
      case 'r': {
        const fullPrefix = parts.slice(2).join(' ');
        const namespace = `${this.keys.namespace}:`;
        const valid = fullPrefix.startsWith(namespace) && PREFIX.test(fullPrefix.slice(namespace.length));
        return valid ? { kind: 'reclaim', fullPrefix } : 'rejected';
      }
      default:
        return 'rejected';
    }
  }
}
