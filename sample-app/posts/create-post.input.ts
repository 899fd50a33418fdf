import { idField, rejectUnknownFields, stringField, type BodyFields } from '../common/parse-body.pipe.js';
import type { CreatePostInput } from './post.model.js';

/** Validates the body of `POST /posts`. */
export function parseCreatePost(body: BodyFields): CreatePostInput {
  rejectUnknownFields(body, ['userId', 'title', 'body']);
  return {
    userId: idField(body, 'userId'),
    title: stringField(body, 'title', { maxLength: 200, required: true }),
    body: stringField(body, 'body', { maxLength: 10_000, required: true }),
  };
}
