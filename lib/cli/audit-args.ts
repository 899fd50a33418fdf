import { parseArgs } from 'node:util';
import type { KeyspaceAuditOptions } from '../audit/audit-options.js';
import { redactSecrets } from '../store/connection-problems.js';
import { CliUsageError } from './cli-io.js';

/** `audit`'s command line, understood. */
export interface AuditArgs {
  readonly help: boolean;
  readonly url: string;
  readonly cluster: boolean;
  readonly json: boolean;
  /** Draw the progress bar: `--progress`, `--no-progress`, else only on a terminal (undefined). */
  readonly progress: boolean | undefined;
  readonly audit: Pick<KeyspaceAuditOptions, 'match' | 'separator' | 'depth' | 'sample' | 'count'>;
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** Parses the arguments after `audit`; a mistake throws a CliUsageError saying which. */
export function parseAuditArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): AuditArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        cluster: { type: 'boolean' },
        match: { type: 'string' },
        separator: { type: 'string' },
        depth: { type: 'string' },
        sample: { type: 'string' },
        count: { type: 'string' },
        json: { type: 'boolean' },
        progress: { type: 'boolean' },
        'no-progress': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    // parseArgs says what is wrong (an unknown option, a missing value) in its message.
    throw new CliUsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new CliUsageError(`unexpected argument '${positionals[0]}'`);
  const url = values.url ?? env.REDIS_URL ?? DEFAULT_URL;
  if (!/^rediss?:\/\//.test(url)) {
    throw new CliUsageError(`--url must start with redis:// or rediss:// (got '${redactSecrets(url)}')`);
  }
  for (const name of ['match', 'separator'] as const) {
    if (values[name] === '') throw new CliUsageError(`--${name} must not be empty`);
  }
  return {
    help: values.help === true,
    url,
    cluster: values.cluster === true,
    json: values.json === true,
    progress: values['no-progress'] ? false : values.progress ? true : undefined,
    audit: {
      match: values.match,
      separator: values.separator,
      depth: positiveInteger('depth', values.depth),
      sample: positiveInteger('sample', values.sample),
      count: positiveInteger('count', values.count),
    },
  };
}

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed === 0) {
    throw new CliUsageError(`--${name} must be a positive integer (got '${value}')`);
  }
  return parsed;
}
