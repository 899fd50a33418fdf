// Loaded with `node --import` (see ioredis5.setup.mjs): resolves `ioredis` to `ioredis5` in this process.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(
      `export async function resolve(specifier, context, next) {
        return next(specifier === 'ioredis' ? 'ioredis5' : specifier, context);
      }`,
    ),
  import.meta.url,
);
