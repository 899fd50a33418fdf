require('reflect-metadata');
const { Module, Injectable } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { RedisCacheModule, Cacheable, CacheService } = require('nestjs-redis-cache');
class Svc {
  constructor() {
    this.loads = 0;
  }
  async find(id) {
    this.loads++;
    return { id, at: new Date(0) };
  }
}
const d = Object.getOwnPropertyDescriptor(Svc.prototype, 'find');
Object.defineProperty(
  Svc.prototype,
  'find',
  Reflect.decorate([Cacheable({ key: 'u:{0}' })], Svc.prototype, 'find', d) || d,
);
Injectable()(Svc);
class AppModule {}
Module({
  imports: [RedisCacheModule.forRoot({ redis: process.env.REDIS_URL, namespace: 'compat11' })],
  providers: [Svc],
})(AppModule);
(async () => {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const svc = app.get(Svc);
  await app.get(CacheService).clear();
  await svc.find(1);
  const v = await svc.find(1);
  console.log(
    'nest',
    require('@nestjs/core/package.json').version,
    'loads',
    svc.loads,
    'date',
    v.at instanceof Date,
    JSON.stringify(app.get(CacheService).stats().byName),
  );
  await app.close();
})();
