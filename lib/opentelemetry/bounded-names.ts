import { OTHER_NAME } from './cache-attributes.js';

/**
 * Keeps the first `limit` distinct names it is asked about and answers `'(other)'` for the rest, so a
 * name built from user input (a `getOrSet` name with an id in it) cannot grow the metric series or
 * span names without end.
 */
export class BoundedNames {
  private readonly kept = new Set<string>();

  constructor(private readonly limit: number) {}

  bound(name: string): string {
    if (this.kept.has(name)) return name;
    if (this.kept.size >= this.limit) return OTHER_NAME;
    this.kept.add(name);
    return name;
  }
}
