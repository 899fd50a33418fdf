import { BadRequestException, type PipeTransform } from '@nestjs/common';

/**
 * Parses a `?limit=` query parameter: absent means `defaultValue`, otherwise an integer in
 * `[1, max]`, else 400.
 *
 * @example
 * list(@Query('limit', new ParseLimitPipe({ defaultValue: 20, max: 100 })) limit: number)
 */
export class ParseLimitPipe implements PipeTransform<string | undefined, number> {
  constructor(private readonly options: { defaultValue: number; max: number }) {}

  transform(value: string | undefined): number {
    if (value === undefined || value === '') return this.options.defaultValue;
    const limit = Number(value);
    if (!Number.isInteger(limit) || limit < 1 || limit > this.options.max) {
      throw new BadRequestException(`limit must be an integer between 1 and ${this.options.max}`);
    }
    return limit;
  }
}
