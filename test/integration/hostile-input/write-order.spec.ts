// Hostile input and lost state, item 8, step by step: writes whose database commits and cache writes
// come in different orders never leave an older value cached. The randomized version across
// processes is concurrent-writes.spec.ts; these are the schedules it found, made deterministic.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { CacheEvict, CachePut, Cacheable, CacheService } from 'nestjs-redis-cache';
import { engineOf } from '../../support/engine-of.js';
import { writeUnguarded } from '../../support/unguarded-writes.js';
import { waitFor } from '../../support/load-helpers.js';
import { createTestApp, uniqueNamespace } from '../../support/test-app.js';

/** A point a call waits at until the test lets it go. */
class Gate {
  private open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
  reached = false;
  release(): void {
    this.open();
  }
}

@Injectable()
class Items {
  /** The database: the committed version of each item. */
  readonly db = new Map<number, number>();
  /** Per call label: where it waits before its commit and before it returns (its cache write follows). */
  readonly gates = new Map<string, { beforeCommit?: Gate; beforeReturn?: Gate }>();
  loads = 0;

  @CachePut({ key: 'item:{0}' })
  async update(id: number, label: string): Promise<number> {
    const gates = this.gates.get(label) ?? {};
    if (gates.beforeCommit) {
      gates.beforeCommit.reached = true;
      await gates.beforeCommit.opened;
    }
    const version = (this.db.get(id) ?? 0) + 1;
    this.db.set(id, version);
    if (gates.beforeReturn) {
      gates.beforeReturn.reached = true;
      await gates.beforeReturn.opened;
    }
    return version;
  }

  @CacheEvict({ key: 'item:{0}' })
  async remove(id: number): Promise<void> {
    this.db.set(id, (this.db.get(id) ?? 0) + 1);
  }

  @Cacheable({ key: 'item:{0}' })
  async find(id: number): Promise<number> {
    this.loads++;
    return this.db.get(id) ?? 0;
  }
}

describe('the order of writes', () => {
  let app: INestApplication;
  let items: Items;
  let cache: CacheService;

  beforeEach(async () => {
    app = await createTestApp({ providers: [Items], cache: { namespace: uniqueNamespace('order') } });
    items = app.get(Items);
    cache = app.get(CacheService);
  });
  afterEach(() => app.close());

  /** Starts `update(id)` as `label`, held at the given gates. */
  function start(id: number, label: string, hold: { beforeCommit?: boolean; beforeReturn?: boolean }) {
    const gates = {
      beforeCommit: hold.beforeCommit ? new Gate() : undefined,
      beforeReturn: hold.beforeReturn ? new Gate() : undefined,
    };
    items.gates.set(label, gates);
    return { call: items.update(id, label), ...gates };
  }

  /** What a reader gets now: the cached value if any, else the database's (the source ran). */
  async function read(id: number): Promise<{ value: number; fromSource: boolean }> {
    const loads = items.loads;
    const value = await items.find(id);
    return { value, fromSource: items.loads > loads };
  }

  it('two writes: the one that began after the other landed is kept', async () => {
    await items.update(1, 'first');
    await items.update(1, 'second');
    expect(await cache.get('item:1')).toBe(2);
  });

  it('three overlapping writes, the oldest landing last: it is not kept (a miss, then the newest)', async () => {
    // A commits v1 and holds before its cache write; C begins; B commits v2 and lands; C commits v3
    // and lands after B (overlapping it); then A lands.
    const a = start(1, 'A', { beforeReturn: true });
    await waitFor('A to commit', () => a.beforeReturn!.reached);
    const c = start(1, 'C', { beforeCommit: true });
    await waitFor('C to begin', () => c.beforeCommit!.reached);
    await items.update(1, 'B');
    c.beforeCommit!.release();
    expect(await c.call).toBe(3);
    a.beforeReturn!.release();
    expect(await a.call).toBe(1);
    expect(items.db.get(1)).toBe(3);
    const seen = await read(1);
    expect(seen).toEqual({ value: 3, fromSource: true });
    expect(await read(1)).toEqual({ value: 3, fromSource: false }); // and cached again
  });

  it('a write that began before an eviction and lands after it is not kept', async () => {
    await items.update(2, 'warm');
    const a = start(2, 'A', { beforeReturn: true }); // commits v2, holds before its cache write
    await waitFor('A to commit', () => a.beforeReturn!.reached);
    await items.remove(2); // v3 and an eviction
    a.beforeReturn!.release();
    expect(await a.call).toBe(2);
    expect(await read(2)).toEqual({ value: 3, fromSource: true });
  });

  it('with the order switched off (as a naive cache writes), the same schedule leaves the old value', async () => {
    writeUnguarded(engineOf(app));
    await items.update(3, 'warm');
    const a = start(3, 'A', { beforeReturn: true });
    await waitFor('A to commit', () => a.beforeReturn!.reached);
    await items.remove(3);
    a.beforeReturn!.release();
    await a.call;
    expect(await read(3)).toEqual({ value: 2, fromSource: false }); // stale: the database says 3
  });
});
