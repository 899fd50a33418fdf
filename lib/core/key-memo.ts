/** How many argument -> key pairs a method remembers. */
const MEMOIZED_KEYS = 10_000;
/** Longer string arguments are not remembered: the memo would keep them alive. */
const MEMOIZED_STRING_LENGTH = 128;

/**
 * For a key template with one plain placeholder (`'user:{0}'`): the Redis keys of recent argument
 * values (short strings and numbers), so a hit builds no string and L1 looks up the very string it
 * stored. Bounded: emptied past MEMOIZED_KEYS. One per method (`@Cacheable`, or a batch's item key).
 */
export class KeyMemo {
  private readonly keys = new Map<unknown, string>();

  /** The Redis key remembered for `arg`; undefined when none is (build it, then `remember` it). */
  get(arg: unknown): string | undefined {
    return rememberable(arg) ? this.keys.get(arg) : undefined;
  }

  /** Remembers `redisKey` for `arg`, when `arg` is a value worth remembering. */
  remember(arg: unknown, redisKey: string): void {
    if (!rememberable(arg)) return;
    if (this.keys.size >= MEMOIZED_KEYS) this.keys.clear();
    this.keys.set(arg, redisKey);
  }
}

function rememberable(arg: unknown): boolean {
  return typeof arg === 'number' || (typeof arg === 'string' && arg.length <= MEMOIZED_STRING_LENGTH);
}
