import { BadRequestException, type PipeTransform } from '@nestjs/common';

/**
 * Validates a request body with a plain parse function, which returns the typed input or throws
 * {@link BadRequestException}. The sample keeps its few DTOs dependency-free this way; a real
 * service would use a schema library and Nest's `StandardSchemaValidationPipe`.
 *
 * @example
 * update(@Body(new ParseBodyPipe(parseUpdateUser)) patch: UpdateUserInput)
 */
export class ParseBodyPipe<T> implements PipeTransform<unknown, T> {
  constructor(private readonly parse: (body: BodyFields) => T) {}

  transform(value: unknown): T {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new BadRequestException('The request body must be a JSON object');
    }
    return this.parse(value as BodyFields);
  }
}

export type BodyFields = Record<string, unknown>;

/** A string field of at most `maxLength` characters, trimmed; undefined when absent and optional. */
export function stringField(body: BodyFields, name: string, options: { maxLength: number; required: true }): string;
export function stringField(
  body: BodyFields,
  name: string,
  options: { maxLength: number; required?: false },
): string | undefined;
export function stringField(
  body: BodyFields,
  name: string,
  options: { maxLength: number; required?: boolean },
): string | undefined {
  const value = body[name];
  if (value === undefined && !options.required) return undefined;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new BadRequestException(`${name} must be a non-empty string`);
  }
  if (value.length > options.maxLength) {
    throw new BadRequestException(`${name} must be at most ${options.maxLength} characters`);
  }
  return value.trim();
}

/** A required positive integer field, e.g. an id. */
export function idField(body: BodyFields, name: string): number {
  const value = body[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new BadRequestException(`${name} must be a positive integer`);
  }
  return value;
}

/** Rejects fields the endpoint does not know, so a typo is a 400 rather than silently ignored. */
export function rejectUnknownFields(body: BodyFields, known: readonly string[]): void {
  const unknown = Object.keys(body).filter((field) => !known.includes(field));
  if (unknown.length > 0) throw new BadRequestException(`Unknown field(s): ${unknown.join(', ')}`);
}
