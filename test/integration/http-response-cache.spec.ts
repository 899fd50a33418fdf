// HttpCacheInterceptor over real HTTP, on Express and on Fastify: GET responses cached in Redis and never
// served across principals; what is not stored; Vary; @CacheKey / @CacheTTL / trackBy; the three ways
// to apply it; fail-open; and a controller written for @nestjs/cache-manager running on it unchanged.
import 'reflect-metadata';
import {
  Controller,
  Get,
  Header,
  Headers,
  HttpCode,
  Injectable,
  Post,
  Query,
  Res,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type INestApplication,
  type ModuleMetadata,
  type NestInterceptor,
  type Type,
} from '@nestjs/common';
import { APP_INTERCEPTOR, HttpAdapterHost } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import * as cacheManager from '@nestjs/cache-manager';
import { tap, type Observable } from 'rxjs';
import request from 'supertest';
import * as nestjsRedisCache from 'nestjs-redis-cache';
import {
  CacheKey,
  CachePublic,
  CacheService,
  CacheTTL,
  HttpCacheInterceptor,
  provideHttpCacheOptions,
  RedisCacheConfigError,
  RedisCacheModule,
  type HttpCacheRequest,
  type RedisCacheModuleOptions,
} from 'nestjs-redis-cache';
import { freePort } from '../../tools/local-redis-server.mjs';
import { rawRedis, testRedisConnection, uniqueNamespace } from '../support/test-app.js';
import { scanEntryKeys } from '../support/redis-keys.js';

type Platform = 'express' | 'fastify';

/** Every handler run takes the next number, so equal numbers mean "served from the cache". */
let runs = 0;
const run = () => ++runs;

/** The test's principal hook: `Authorization: Bearer <user>` is user <user>. */
const bearerUser = (request: HttpCacheRequest) => {
  const auth = request.headers.authorization;
  return typeof auth === 'string' ? auth.replace(/^Bearer /, '') : undefined;
};

@UseInterceptors(HttpCacheInterceptor) // controller level
@Controller('account')
class AccountController {
  constructor(private readonly host: HttpAdapterHost) {}

  @Get()
  profile(@Headers('authorization') auth?: string) {
    return { for: auth ?? 'anonymous', n: run() };
  }

  @CachePublic()
  @Get('catalog')
  catalog(@Headers('authorization') auth?: string) {
    return { catalog: ['tea', 'coffee'], firstAskedBy: auth ?? 'anonymous', n: run() };
  }

  @Post()
  create() {
    return { created: run() };
  }

  @Get('lang')
  @Header('Vary', 'Accept-Language')
  lang(@Headers('accept-language') language?: string) {
    return { greeting: language === 'fr' ? 'bonjour' : language === 'en' ? 'hello' : 'hi', n: run() };
  }

  @Get('set-cookie')
  @Header('Set-Cookie', 'flavour=oat; Path=/')
  setsCookie() {
    return { n: run() };
  }

  @Get('private')
  @Header('Cache-Control', 'private, max-age=60')
  privateResponse() {
    return { n: run() };
  }

  @Get('no-store')
  @Header('Cache-Control', 'no-store')
  noStore() {
    return { n: run() };
  }

  @Get('not-found')
  @HttpCode(404)
  notFound() {
    return { n: run() };
  }

  @Get('text')
  @Header('Content-Type', 'text/csv; charset=utf-8')
  csv() {
    return `n\n${run()}\n`;
  }

  @Get('raw')
  raw(@Res() response: unknown) {
    this.host.httpAdapter.reply(response, { n: run() }, 200);
  }
}

/**
 * Adds a `Set-Cookie` once the handler's result is complete (after the inner interceptors saw it), as
 * session middleware does when the headers are written.
 */
@Injectable()
class LateCookieInterceptor implements NestInterceptor {
  constructor(private readonly host: HttpAdapterHost) {}
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const response = context.switchToHttp().getResponse();
    return next
      .handle()
      .pipe(tap({ complete: () => this.host.httpAdapter.setHeader(response, 'Set-Cookie', 'late=1') }));
  }
}

@UseInterceptors(LateCookieInterceptor, HttpCacheInterceptor) // the first is the outer one
@Controller('late-cookie')
class LateCookieController {
  @Get()
  get() {
    return { n: run() };
  }
}

@CacheTTL(300) // controller-level TTL; a handler's own wins
@Controller('posts')
class PostsController {
  @Get('latest')
  @UseInterceptors(HttpCacheInterceptor) // route level
  @CacheKey('latest-posts')
  @CacheTTL(120)
  latest() {
    return { latest: run() };
  }

  @Get('archive')
  @UseInterceptors(HttpCacheInterceptor)
  @CacheKey('posts-archive')
  archive() {
    return { archive: run() };
  }

  @Get('profiled')
  @UseInterceptors(HttpCacheInterceptor)
  @CacheKey('posts-profiled')
  @CacheTTL('trending')
  profiled() {
    return { profiled: run() };
  }

  @Get('unknown-profile')
  @UseInterceptors(HttpCacheInterceptor)
  @CacheKey('posts-unknown-profile')
  @CacheTTL('no_such_profile')
  unknownProfile() {
    return { n: run() };
  }

  @Get('uncached')
  uncached() {
    return { uncached: run() };
  }
}

/** Keys by path only: the query string does not change these responses. */
@Injectable()
class PathOnlyCacheInterceptor extends HttpCacheInterceptor {
  protected override trackBy(context: ExecutionContext): string | undefined {
    const url: string = this.httpAdapterHost.httpAdapter.getRequestUrl(context.switchToHttp().getRequest());
    return url.split('?')[0];
  }
}

@UseInterceptors(PathOnlyCacheInterceptor)
@Controller('search')
class SearchController {
  @Get()
  search(@Query('utm') utm?: string) {
    return { firstUtm: utm ?? null, n: run() };
  }
}

@UseInterceptors(HttpCacheInterceptor.withOptions({ anonymousCookies: ['theme'] }))
@Controller('preferences')
class PreferencesController {
  @Get()
  get() {
    return { n: run() };
  }
}

/** No interceptor of its own: cached only through APP_INTERCEPTOR. */
@Controller('plain')
class PlainController {
  @Get()
  get() {
    return { n: run() };
  }
}

/**
 * A controller written for `@nestjs/cache-manager`. Its source is written once; `lib` is what its
 * `import { CacheInterceptor, CacheKey, CacheTTL } from '...'` line brings in, so calling it with each
 * package is the import swap.
 */
function articlesControllerImporting(lib: typeof cacheManager | typeof nestjsRedisCache): Type<unknown> {
  const { CacheInterceptor, CacheKey, CacheTTL } = lib;

  @UseInterceptors(CacheInterceptor)
  @Controller('articles')
  class ArticlesController {
    @Get()
    list(@Query('page') page = '1') {
      return { page: Number(page), n: run() };
    }

    @Get('featured')
    @CacheKey('featured-articles')
    @CacheTTL(60_000) // cache-manager: 60 s; nestjs-redis-cache: 60,000 s (seconds, see the README)
    featured() {
      return { featured: ['a', 'b'], n: run() };
    }
  }
  return ArticlesController;
}

describe('HTTP cache decorators', () => {
  it('reject a malformed TTL or key where the class is defined, naming Class.method', () => {
    const define = (decorator: MethodDecorator) => {
      class Broken {
        handler() {}
      }
      decorator(Broken.prototype, 'handler', Object.getOwnPropertyDescriptor(Broken.prototype, 'handler')!);
    };
    for (const ttl of [0, -5, Number.NaN, Infinity, '', '5 minutes']) {
      expect(() => define(CacheTTL(ttl))).toThrow(RedisCacheConfigError);
    }
    expect(() => define(CacheTTL(0))).toThrow(/@CacheTTL on Broken\.handler: ttl must be a positive/);
    expect(() => define(CacheKey(''))).toThrow(RedisCacheConfigError);
    expect(() => define(CacheTTL('5m'))).not.toThrow();
    expect(() => define(CacheTTL('user_profile'))).not.toThrow(); // a profile, checked against the module's when used
  });
});

describe.each<Platform>(['express', 'fastify'])('HttpCacheInterceptor on %s', (platform) => {
  const redis = rawRedis();
  const apps: INestApplication[] = [];

  /** A Nest app on `platform` with the cache on the test Redis under a fresh namespace (jitter 0: exact TTLs). */
  async function boot(
    metadata: ModuleMetadata,
    cache: RedisCacheModuleOptions = {},
  ): Promise<{ app: INestApplication; ns: string; get: (path: string) => request.Test }> {
    const ns = uniqueNamespace(`http-${platform}`);
    const moduleRef = await Test.createTestingModule({
      ...metadata,
      imports: [
        RedisCacheModule.forRoot({ redis: testRedisConnection(), jitter: 0, ...cache, namespace: ns }),
        ...(metadata.imports ?? []),
      ],
    }).compile();
    const app = moduleRef.createNestApplication(platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(), {
      logger: false,
    });
    apps.push(app);
    await app.init();
    if (platform === 'fastify') await app.getHttpAdapter().getInstance().ready();
    return { app, ns, get: (path) => request(app.getHttpServer()).get(path) };
  }

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis.quit();
  });

  describe('with a principal hook', () => {
    let app: INestApplication;
    let ns: string;
    let get: (path: string) => request.Test;

    beforeAll(async () => {
      ({ app, ns, get } = await boot(
        {
          controllers: [
            AccountController,
            LateCookieController,
            PostsController,
            SearchController,
            PreferencesController,
          ],
          providers: [LateCookieInterceptor, provideHttpCacheOptions({ principal: bearerUser })],
        },
        { ttlProfiles: { trending: '5m' } },
      ));
    });

    it('never serves one user the response of another: each principal, and anonymous requests, get their own', async () => {
      const first = {
        alice: await get('/account').set('Authorization', 'Bearer alice').expect(200),
        bob: await get('/account').set('Authorization', 'Bearer bob').expect(200),
        anonymous: await get('/account').expect(200),
      };
      expect(first.alice.body.for).toBe('Bearer alice');
      expect(first.bob.body.for).toBe('Bearer bob');
      expect(first.anonymous.body.for).toBe('anonymous');
      for (const res of Object.values(first)) expect(res.headers['x-cache']).toBe('MISS');

      for (let round = 0; round < 3; round++) {
        for (const [who, auth] of [
          ['alice', 'Bearer alice'],
          ['bob', 'Bearer bob'],
          ['anonymous', undefined],
        ] as const) {
          const req = get('/account');
          const res = await (auth ? req.set('Authorization', auth) : req).expect(200);
          expect(res.body).toEqual(first[who].body); // its own, from the cache
          expect(res.headers['x-cache']).toBe('HIT');
        }
      }
      // Principals are hashed into keys: neither the user nor the header stands in Redis.
      const keys = await scanEntryKeys(redis, `${ns}:http:*`);
      expect(keys.length).toBeGreaterThanOrEqual(3);
      expect(keys.join(' ')).not.toMatch(/alice|bob|Bearer/);
      const stats = app.get(CacheService).stats().byName['HTTP AccountController.profile'];
      expect(stats).toMatchObject({ hits: 9, misses: 3 });
    });

    it('shares a @CachePublic() route between users and anonymous requests', async () => {
      const alice = await get('/account/catalog').set('Authorization', 'Bearer alice').expect(200);
      expect(alice.headers['x-cache']).toBe('MISS');
      const bob = await get('/account/catalog').set('Authorization', 'Bearer bob').expect(200);
      const anonymous = await get('/account/catalog').set('Cookie', 'sid=xyz').expect(200);
      expect(bob.body).toEqual(alice.body);
      expect(anonymous.body).toEqual(alice.body);
      expect([bob.headers['x-cache'], anonymous.headers['x-cache']]).toEqual(['HIT', 'HIT']);
    });

    it.each([
      ['Set-Cookie', '/account/set-cookie'],
      ['Cache-Control: private', '/account/private'],
      ['Cache-Control: no-store', '/account/no-store'],
      ['a Set-Cookie added after the handler returned', '/late-cookie'],
    ])('does not store a response with %s', async (_, path) => {
      const first = await get(path).expect(200);
      const second = await get(path).expect(200);
      expect(second.body.n).toBe(first.body.n + 1);
      expect(second.headers['x-cache']).toBe('MISS');
    });

    it('does not store a non-2xx response', async () => {
      const first = await get('/account/not-found').expect(404);
      const second = await get('/account/not-found').expect(404);
      expect(second.body.n).toBe(first.body.n + 1);
    });

    it('keys by the Vary request headers: each Accept-Language gets its own body, never another', async () => {
      const en = await get('/account/lang').set('Accept-Language', 'en').expect(200);
      const fr = await get('/account/lang').set('Accept-Language', 'fr').expect(200);
      const none = await get('/account/lang').expect(200);
      expect([en.body.greeting, fr.body.greeting, none.body.greeting]).toEqual(['hello', 'bonjour', 'hi']);
      expect([en.headers['x-cache'], fr.headers['x-cache'], none.headers['x-cache']]).toEqual(['MISS', 'MISS', 'MISS']);

      for (const [language, expected] of [
        ['fr', fr],
        ['en', en],
        [undefined, none],
      ] as const) {
        const req = get('/account/lang');
        const res = await (language ? req.set('Accept-Language', language) : req).expect(200);
        expect(res.body).toEqual(expected.body);
        expect(res.headers['x-cache']).toBe('HIT');
        expect(res.headers.vary).toMatch(/accept-language/i);
      }
      const de = await get('/account/lang').set('Accept-Language', 'de').expect(200);
      expect(de.headers['x-cache']).toBe('MISS');
      expect(de.body.n).toBeGreaterThan(none.body.n);
    });

    it('replays the content type of a non-JSON response', async () => {
      const first = await get('/account/text').expect(200);
      const second = await get('/account/text').expect(200);
      expect(second.headers['x-cache']).toBe('HIT');
      expect(second.text).toBe(first.text);
      expect(second.headers['content-type']).toBe('text/csv; charset=utf-8');
    });

    it('honours @CacheKey and @CacheTTL (handler over controller; seconds, durations and profiles)', async () => {
      const first = await get('/posts/latest?page=1').expect(200);
      const other = await get('/posts/latest?page=2').expect(200); // one key for the route, whatever the URL
      expect(other.body).toEqual(first.body);
      expect(other.headers['x-cache']).toBe('HIT');

      await get('/posts/archive').expect(200);
      await get('/posts/profiled').expect(200);
      const pttl = async (key: string) => redis.pttl(`${ns}:http:${key}:shared:-`);
      expect(await pttl('latest-posts')).toBeGreaterThan(119_000);
      expect(await pttl('latest-posts')).toBeLessThanOrEqual(120_000);
      expect(await pttl('posts-archive')).toBeGreaterThan(299_000); // the controller's @CacheTTL(300)
      expect(await pttl('posts-archive')).toBeLessThanOrEqual(300_000);
      expect(await pttl('posts-profiled')).toBeGreaterThan(299_000); // ttlProfiles.trending = '5m'
    });

    it('serves, without caching, a route whose @CacheTTL names an unknown profile', async () => {
      const first = await get('/posts/unknown-profile').expect(200);
      const second = await get('/posts/unknown-profile').expect(200);
      expect(second.body.n).toBe(first.body.n + 1);
      expect(await redis.exists(`${ns}:http:posts-unknown-profile:shared:-`)).toBe(0);
    });

    it('uses an overridden trackBy', async () => {
      const first = await get('/search?utm=mail').expect(200);
      const second = await get('/search?utm=ads').expect(200);
      expect(second.headers['x-cache']).toBe('HIT');
      expect(second.body).toEqual(first.body);
    });

    it('treats cookies listed in anonymousCookies (HttpCacheInterceptor.withOptions) as anonymous', async () => {
      const first = await get('/preferences').set('Cookie', 'theme=dark').expect(200);
      const second = await get('/preferences').set('Cookie', 'theme=light').expect(200);
      expect(second.body).toEqual(first.body);
      expect(second.headers['x-cache']).toBe('HIT');
      const session = await get('/preferences').set('Cookie', 'theme=dark; sid=123').expect(200);
      expect(session.headers['x-cache']).toBe('BYPASS'); // a session cookie whose principal the hook cannot tell
      expect(session.body.n).toBeGreaterThan(first.body.n);
    });

    it('lets non-GET requests, @Res() handlers and routes without the interceptor through', async () => {
      const posts = [await request(app.getHttpServer()).post('/account').expect(201)];
      posts.push(await request(app.getHttpServer()).post('/account').expect(201));
      expect(posts[1].body.created).toBe(posts[0].body.created + 1);
      expect(posts[1].headers['x-cache']).toBeUndefined();

      const raw = [await get('/account/raw').expect(200), await get('/account/raw').expect(200)];
      expect(raw[1].body.n).toBe(raw[0].body.n + 1);
      expect(raw[1].headers['x-cache']).toBeUndefined();

      const plain = [await get('/posts/uncached').expect(200), await get('/posts/uncached').expect(200)];
      expect(plain[1].body.uncached).toBe(plain[0].body.uncached + 1);
    });

    it("CacheService.clear('http:') invalidates every cached response", async () => {
      const before = await get('/account/catalog').expect(200);
      expect(before.headers['x-cache']).toBe('HIT');
      await app.get(CacheService).clear('http:');
      const after = await get('/account/catalog').expect(200);
      expect(after.headers['x-cache']).toBe('MISS');
      expect(after.body.n).toBeGreaterThan(before.body.n);
    });
  });

  it('does not cache authenticated requests without a principal hook (Authorization or a session cookie)', async () => {
    const { get, ns } = await boot({ controllers: [AccountController] });
    for (const [header, value] of [
      ['Authorization', 'Bearer alice'],
      ['Cookie', 'sid=alice-session'],
    ]) {
      const first = await get('/account').set(header, value).expect(200);
      const second = await get('/account').set(header, value).expect(200);
      expect(second.body.n).toBe(first.body.n + 1);
      expect([first.headers['x-cache'], second.headers['x-cache']]).toEqual(['BYPASS', 'BYPASS']);
    }
    expect(await scanEntryKeys(redis, `${ns}:http:*`)).toEqual([]);
    // Anonymous requests are still cached.
    const anonymous = await get('/account').expect(200);
    expect((await get('/account').expect(200)).body).toEqual(anonymous.body);
  });

  it('caches every GET route when registered globally (APP_INTERCEPTOR)', async () => {
    const { get } = await boot({
      controllers: [PlainController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: HttpCacheInterceptor }],
    });
    const first = await get('/plain').expect(200);
    const second = await get('/plain').expect(200);
    expect(second.body).toEqual(first.body);
    expect(second.headers['x-cache']).toBe('HIT');
  });

  it('still serves every request when Redis is unreachable', async () => {
    const port = await freePort();
    const { get } = await boot(
      { controllers: [AccountController], providers: [provideHttpCacheOptions({ principal: bearerUser })] },
      { redis: `redis://127.0.0.1:${port}`, commandTimeout: 100 },
    );
    const first = await get('/account').set('Authorization', 'Bearer alice').expect(200);
    const second = await get('/account').set('Authorization', 'Bearer alice').expect(200);
    expect(first.body.for).toBe('Bearer alice');
    expect(second.body.n).toBe(first.body.n + 1);
    expect(second.headers['x-cache']).toBe('MISS');
  });

  it('runs a controller written for @nestjs/cache-manager with only its import line swapped', async () => {
    // As written, on @nestjs/cache-manager (in memory):
    const before = await boot({
      imports: [cacheManager.CacheModule.register()],
      controllers: [articlesControllerImporting(cacheManager)],
    });
    const original = [
      await before.get('/articles?page=2').expect(200),
      await before.get('/articles?page=2').expect(200),
    ];
    expect(original[1].body).toEqual(original[0].body);

    // Import swapped to nestjs-redis-cache:
    const { get, ns } = await boot({ controllers: [articlesControllerImporting(nestjsRedisCache)] });
    const page2 = await get('/articles?page=2').expect(200);
    expect((await get('/articles?page=2').expect(200)).body).toEqual(page2.body);
    const page3 = await get('/articles?page=3').expect(200); // the URL is the key, as with cache-manager
    expect(page3.body).toEqual({ page: 3, n: page2.body.n + 1 });

    const featured = await get('/articles/featured').expect(200);
    const again = await get('/articles/featured').expect(200);
    expect(again.body).toEqual(featured.body);
    expect(again.headers['x-cache']).toBe('HIT');
    // @CacheKey is the key; @CacheTTL is read in this module's unit, seconds.
    expect(await redis.pttl(`${ns}:http:featured-articles:shared:-`)).toBeGreaterThan(59_000_000);
  });
});
