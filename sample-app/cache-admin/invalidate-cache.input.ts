import { BadRequestException } from '@nestjs/common';
import { rejectUnknownFields, type BodyFields } from '../common/parse-body.pipe.js';

/** Body of `POST /admin/cache/invalidate`: exactly one of the three. */
export type InvalidateCacheInput =
  | { keys: string[] } // `{ "key": "user:1" }` or `{ "keys": ["user:1", "user:2"] }`
  | { prefix: string } // `{ "prefix": "posts:trending:" }`
  | { all: true }; // `{ "all": true }`: everything under the app's namespace

const MAX_KEYS = 1000;

/** Validates the body of `POST /admin/cache/invalidate`. */
export function parseInvalidateCache(body: BodyFields): InvalidateCacheInput {
  rejectUnknownFields(body, ['key', 'keys', 'prefix', 'all']);
  const given = ['key', 'keys', 'prefix', 'all'].filter((field) => body[field] !== undefined);
  if (given.length !== 1) throw new BadRequestException('Give exactly one of key, keys, prefix, all');

  if (body.key !== undefined) return { keys: [nonEmptyString(body.key, 'key')] };
  if (body.keys !== undefined) {
    if (!Array.isArray(body.keys) || body.keys.length === 0 || body.keys.length > MAX_KEYS) {
      throw new BadRequestException(`keys must be a non-empty array of at most ${MAX_KEYS} strings`);
    }
    return { keys: body.keys.map((key) => nonEmptyString(key, 'keys[]')) };
  }
  if (body.prefix !== undefined) return { prefix: nonEmptyString(body.prefix, 'prefix') };
  if (body.all !== true) throw new BadRequestException('all must be true');
  return { all: true };
}

function nonEmptyString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new BadRequestException(`${name} must be a non-empty string`);
  return value;
}
