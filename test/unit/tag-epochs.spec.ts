// TagEpochs alone (core/invalidation/tag-epochs.ts): what it may trust, with the reads of the tag
// keys and the messages played by hand, in every order the network can deliver them.
import { BookkeepingKeys } from '../../lib/core/bookkeeping-keys.js';
import { MAX_KNOWN_TAGS, TagEpochs } from '../../lib/core/invalidation/tag-epochs.js';
import { RedisClock } from '../../lib/core/redis-clock.js';

const NOW_US = Date.now() * 1_000;
const OLD = NOW_US - 5_000_000;
const NEWER = NOW_US - 1_000_000;

function setup() {
  let rejected = 0;
  const epochs = new TagEpochs(
    new BookkeepingKeys('unit', { keyPrefix: '', db: 0 }),
    new RedisClock(),
    () => rejected++,
  );
  return { epochs, rejected: () => rejected };
}

/** A read of tag keys whose reply the test sends when it likes. */
function pendingRead(): {
  read: () => Promise<Array<number | undefined>>;
  reply: (epochs: Array<number | undefined>) => void;
} {
  let reply!: (epochs: Array<number | undefined>) => void;
  const promise = new Promise<Array<number | undefined>>((resolve) => (reply = resolve));
  return { read: () => promise, reply };
}

describe('TagEpochs', () => {
  it('knows nothing until subscribed: reads are not kept, every check goes to Redis', async () => {
    const { epochs } = setup();
    await epochs.learn(['a'], () => Promise.resolve([OLD]));
    expect(epochs.valid(['a'], NOW_US)).toBeUndefined();
    await epochs.subscribed();
    expect(epochs.valid(['a'], NOW_US)).toBeUndefined();
    await epochs.learn(['a'], () => Promise.resolve([OLD]));
    expect(epochs.valid(['a'], NOW_US)).toBe(true);
    expect(epochs.valid(['a'], OLD - 1)).toBe(false);
    expect(epochs.valid(['a', 'b'], NOW_US)).toBeUndefined();
  });

  it('a message about a tag being read raises what the read brings back (the reply left Redis first)', async () => {
    const { epochs } = setup();
    await epochs.subscribed();
    const { read, reply } = pendingRead();
    const learning = epochs.learn(['a', 'b'], read);
    epochs.received(`t ${NEWER} a`);
    reply([OLD, OLD]);
    expect(await learning).toEqual([OLD, OLD]);
    expect(epochs.valid(['a'], OLD)).toBe(false);
    expect(epochs.valid(['a'], NEWER)).toBe(true);
    expect(epochs.valid(['b'], OLD)).toBe(true);
  });

  it('epochs only grow: an older message or read after a newer one changes nothing', async () => {
    const { epochs } = setup();
    await epochs.subscribed();
    await epochs.learn(['a'], () => Promise.resolve([NEWER]));
    epochs.received(`t ${OLD} a`);
    await epochs.learn(['a'], () => Promise.resolve([OLD]));
    expect(epochs.valid(['a'], OLD)).toBe(false);
    epochs.invalidated(['a'], OLD);
    expect(epochs.valid(['a'], OLD)).toBe(false);
  });

  it('a read that began before the subscription was lost is not kept, even once subscribed again', async () => {
    const { epochs } = setup();
    await epochs.subscribed();
    await epochs.learn(['a'], () => Promise.resolve([OLD]));
    const { read, reply } = pendingRead();
    const learning = epochs.learn(['b'], read);
    epochs.lost();
    expect(epochs.valid(['a'], NOW_US)).toBeUndefined();
    await epochs.subscribed();
    reply([OLD]);
    await learning;
    expect(epochs.valid(['b'], NOW_US)).toBeUndefined();
    expect(epochs.valid(['a'], NOW_US)).toBeUndefined(); // forgotten at the loss
  });

  it('a missing or garbled tag key is not an epoch: not kept, so it is read (and refused) again', async () => {
    const { epochs } = setup();
    await epochs.subscribed();
    await epochs.learn(['gone', 'garbled'], () => Promise.resolve([undefined, Number.NaN]));
    expect(epochs.valid(['gone'], NOW_US)).toBeUndefined();
    expect(epochs.valid(['garbled'], NOW_US)).toBeUndefined();
  });

  it('messages about tags not known are dropped (the next read asks Redis); known ones are raised', async () => {
    const { epochs, rejected } = setup();
    await epochs.subscribed();
    await epochs.learn(['a'], () => Promise.resolve([OLD]));
    epochs.received(`t ${NEWER} a z`);
    expect(epochs.valid(['a'], OLD)).toBe(false);
    expect(epochs.valid(['z'], NOW_US)).toBeUndefined();
    expect(rejected()).toBe(0);
  });

  it.each([
    ['an epoch Redis cannot have reached', 't 1e300 a'],
    ['a negative epoch', 't -5 a'],
    ['no tags', `t ${NEWER}`],
    ['a tag normalising cannot produce', `t ${NEWER} a\u0000b`],
    ['another head', `k ${NEWER} a`],
    ['nothing', ''],
  ])('rejects %s, counted and never acted on', async (_what, message) => {
    const { epochs, rejected } = setup();
    await epochs.subscribed();
    await epochs.learn(['a'], () => Promise.resolve([OLD]));
    epochs.received(message);
    expect(rejected()).toBe(1);
    expect(epochs.valid(['a'], OLD)).toBe(true);
  });

  it(`keeps at most ${MAX_KNOWN_TAGS} tags: the least recently used one is read again`, async () => {
    const { epochs } = setup();
    await epochs.subscribed();
    await epochs.learn(['first'], () => Promise.resolve([OLD]));
    const many = Array.from({ length: MAX_KNOWN_TAGS }, (_, i) => `t${i}`);
    await epochs.learn(many, () => Promise.resolve(many.map(() => OLD)));
    expect(epochs.valid(['first'], NOW_US)).toBeUndefined();
    expect(epochs.valid(['t0', `t${MAX_KNOWN_TAGS - 1}`], NOW_US)).toBe(true);
  });

  it('announces `t epoch tags...` on the namespace tags channel', () => {
    const { epochs } = setup();
    expect(epochs.announcement(['a', 'b'])).toEqual({ channel: epochs.channel, head: 't', tail: 'a b' });
    expect(epochs.channel).toBe(new BookkeepingKeys('unit', { keyPrefix: '', db: 0 }).tagChannel);
  });
});
