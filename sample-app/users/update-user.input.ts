import { BadRequestException } from '@nestjs/common';
import { rejectUnknownFields, stringField, type BodyFields } from '../common/parse-body.pipe.js';
import type { UpdateUserInput } from './user.model.js';

/** Validates the body of `PUT /users/:id`. */
export function parseUpdateUser(body: BodyFields): UpdateUserInput {
  rejectUnknownFields(body, ['name', 'email', 'bio']);
  const patch: UpdateUserInput = {
    name: stringField(body, 'name', { maxLength: 100 }),
    email: stringField(body, 'email', { maxLength: 200 }),
    bio: stringField(body, 'bio', { maxLength: 1000 }),
  };
  if (patch.email !== undefined && !/^[^@\s]+@[^@\s]+$/.test(patch.email)) {
    throw new BadRequestException('email must be an email address');
  }
  if (Object.values(patch).every((value) => value === undefined)) {
    throw new BadRequestException('Give at least one of name, email, bio');
  }
  return patch;
}
