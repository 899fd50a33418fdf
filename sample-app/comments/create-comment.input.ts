import { idField, rejectUnknownFields, stringField, type BodyFields } from '../common/parse-body.pipe.js';
import type { CreateCommentInput } from './comment.model.js';

/** Validates the body of `POST /posts/:id/comments`. */
export function parseCreateComment(body: BodyFields): CreateCommentInput {
  rejectUnknownFields(body, ['userId', 'body']);
  return {
    userId: idField(body, 'userId'),
    body: stringField(body, 'body', { maxLength: 2_000, required: true }),
  };
}
