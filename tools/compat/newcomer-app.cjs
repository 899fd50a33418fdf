// A newcomer's app in plain CommonJS JavaScript: `require('nestjs-redis-cache')` goes through
// Node's require(esm) to the one ESM build. Exits non-zero unless the second call was a hit.
require('reflect-metadata');
const { Module, Injectable } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { RedisCacheModule, Cacheable, CacheService } = require('nestjs-redis-cache');

class UsersService {
  constructor() {
    this.loads = 0;
  }
  async find(id) {
    this.loads++;
    return { id, at: new Date(0) };
  }
}
const find = Object.getOwnPropertyDescriptor(UsersService.prototype, 'find');
Object.defineProperty(
  UsersService.prototype,
  'find',
  Reflect.decorate([Cacheable({ key: 'user:{0}' })], UsersService.prototype, 'find', find) || find,
);
Injectable()(UsersService);
class AppModule {}
Module({
  imports: [RedisCacheModule.forRoot({ redis: process.env.REDIS_URL, namespace: 'newcomer-cjs' })],
  providers: [UsersService],
})(AppModule);

(async () => {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  const users = app.get(UsersService);
  await app.get(CacheService).clear();
  await users.find(1);
  const value = await users.find(1);
  const hits = app.get(CacheService).stats().byName['UsersService.find']?.hits;
  const ok = users.loads === 1 && hits === 1 && value.at instanceof Date;
  const nest = require('@nestjs/core/package.json').version;
  console.log(
    `require: nest ${nest}, loads ${users.loads}, hits ${hits}, from ${require.resolve('nestjs-redis-cache')}`,
  );
  await app.close();
  if (!ok) throw new Error('expected 1 load and 1 hit (a Date back as a Date)');
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
