import calculateSlot from 'cluster-key-slot';

/** Redis Cluster's hash slots. */
const SLOTS = 16_384;

let tags: readonly string[] | undefined;

/**
 * For every Cluster hash slot, a short hash tag (`{tag}`) that hashes to it: the shortest base-36
 * numbers, found once (about 90,000 CRC16s, some 25 ms) and shared by the process.
 */
export function slotTags(): readonly string[] {
  if (tags) return tags;
  const found = new Array<string>(SLOTS);
  let missing = SLOTS;
  for (let n = 0; missing > 0; n++) {
    const tag = n.toString(36);
    const slot = calculateSlot(tag);
    if (found[slot] === undefined) {
      found[slot] = tag;
      missing--;
    }
  }
  tags = found;
  return found;
}
