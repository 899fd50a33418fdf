// A newcomer's app in plain ESM JavaScript. Exits non-zero unless the second call was a hit, or if
// `import` and `require` of the package give two different copies of it.
import 'reflect-metadata';
import { createRequire } from 'node:module';
import { Module, Injectable } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisCacheModule, Cacheable, CacheService } from 'nestjs-redis-cache';

const require = createRequire(import.meta.url);

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
  imports: [RedisCacheModule.forRoot({ redis: process.env.REDIS_URL, namespace: 'newcomer-esm' })],
  providers: [UsersService],
})(AppModule);

const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
const users = app.get(UsersService);
await app.get(CacheService).clear();
await users.find(1);
const value = await users.find(1);
const hits = app.get(CacheService).stats().byName['UsersService.find']?.hits;
const oneCopy = require('nestjs-redis-cache').CacheService === CacheService;
const nest = require('@nestjs/core/package.json').version;
console.log(
  `import: nest ${nest}, loads ${users.loads}, hits ${hits}, from ${import.meta.resolve('nestjs-redis-cache')}, ` +
    `require() gives the same module: ${oneCopy}`,
);
await app.close();
if (users.loads !== 1 || hits !== 1 || !(value.at instanceof Date) || !oneCopy) {
  console.error('expected 1 load and 1 hit (a Date back as a Date), and one copy of the module');
  process.exitCode = 1;
}
