/** The name that stands for every name past a bound: in stats, metric labels and span names alike. */
export const OTHER_NAME = '(other)';

/**
 * Keeps the first `limit` distinct names it is asked about and answers OTHER_NAME for the rest. Names
 * come from code (`Class.method`, a decorator's `name`), but `getOrSet` takes any string: one built
 * from user input would otherwise grow the metric series or span names without end.
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
