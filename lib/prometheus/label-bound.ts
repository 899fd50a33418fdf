/** The label value that stands for every value past a dimension's bound. */
export const OTHER_LABEL_VALUE = '(other)';

/**
 * The values one label (cache, name, route) may take. Names come from code (`Class.method`, a
 * decorator's `name`), but `getOrSet` takes any string: a name built from user input would otherwise
 * grow the series without end, so past `max` distinct values the rest fold into `(other)`.
 */
export class LabelBound {
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  fold(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return OTHER_LABEL_VALUE;
    this.seen.add(value);
    return value;
  }
}
