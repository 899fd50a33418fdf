// A result that is an instance of a class comes back from a hit as a plain object: its methods and
// prototype are gone. The module says so once per method, naming it, the first time it stores one.
import 'reflect-metadata';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Cacheable } from 'nestjs-redis-cache';
import { LogRecorder } from '../support/fault-helpers.js';
import { createTestApp } from '../support/test-app.js';

class User {
  constructor(
    readonly id: number,
    readonly first: string,
  ) {}
  greeting(): string {
    return `hello ${this.first}`;
  }
}

/** Says how it wants to be stored: encoded through toJSON, as intended, so nothing to warn about. */
class Money {
  constructor(readonly cents: number) {}
  toJSON() {
    return { cents: this.cents };
  }
}

@Injectable()
class Users {
  @Cacheable({ key: 'user:{0}' })
  async user(id: number): Promise<User> {
    return new User(id, 'ada');
  }

  @Cacheable({ key: 'users:{0}' })
  async users(count: number): Promise<User[]> {
    return Array.from({ length: count }, (_, n) => new User(n, 'ada'));
  }

  @Cacheable({ key: 'plain:{0}' })
  async plain(id: number): Promise<unknown> {
    return { id, at: new Date(0), tags: new Set(['a']), byId: new Map([[1, { id: 1 }]]), price: new Money(5) };
  }
}

describe('results that are class instances', () => {
  let app: INestApplication;
  const logs = new LogRecorder();

  beforeAll(async () => {
    app = await createTestApp({ providers: [Users], logger: logs });
  });
  afterAll(() => app.close());

  const warnings = () =>
    logs.cacheLines('warn').filter((line) => line.includes('which a hit returns as a plain object'));

  it('warns once per method, naming it and the class, and the hit is a plain object', async () => {
    const users = app.get(Users);
    const miss = await users.user(1);
    expect(miss.greeting()).toBe('hello ada');
    const hit = await users.user(1);
    expect(hit).not.toBeInstanceOf(User);
    expect(hit).toEqual({ id: 1, first: 'ada' });
    await users.user(2);
    await users.users(3);
    await users.users(4);
    expect(warnings()).toEqual([
      'Users.user: its result is an instance of User, which a hit returns as a plain object (its methods and ' +
        'prototype are gone). Return plain data (a DTO, an interface type), or rebuild the instance where it is used.',
      expect.stringMatching(/^Users\.users: its result is an instance of User, /),
    ]);
  });

  it('says nothing of plain data and of what the codec restores or encodes through toJSON', async () => {
    await app.get(Users).plain(1);
    expect(warnings().filter((line) => line.startsWith('Users.plain'))).toEqual([]);
  });
});
