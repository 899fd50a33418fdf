// The options of the audit (the function's and the command line's) and of the startup advisor:
// defaults, and mistakes named.
import { AUDIT_DEFAULTS, DEFAULT_THRESHOLDS, resolveAuditOptions } from '../../lib/audit/audit-options.js';
import { resolveAdvisorChecks } from '../../lib/audit/startup-advisor.js';
import { parseAuditArgs } from '../../lib/cli/audit-args.js';
import { CliUsageError } from '../../lib/cli/cli-io.js';
import { resolveCacheOptions } from '../../lib/options/resolve-options.js';
import { configError } from '../support/config-error.js';

describe('resolveAuditOptions', () => {
  it('applies the defaults', () => {
    expect(resolveAuditOptions()).toEqual({ ...AUDIT_DEFAULTS, thresholds: DEFAULT_THRESHOLDS, onProgress: undefined });
    expect(AUDIT_DEFAULTS).toEqual({
      match: '*',
      separator: ':',
      depth: 2,
      sample: 1000,
      count: 1000,
      maxPrefixes: 1000,
    });
  });

  it('keeps given values and merges thresholds', () => {
    const settings = resolveAuditOptions({ match: 'cache:*', depth: 3, thresholds: { minHitRate: 0.9 } });
    expect(settings).toMatchObject({ match: 'cache:*', depth: 3, sample: 1000 });
    expect(settings.thresholds).toEqual({ ...DEFAULT_THRESHOLDS, minHitRate: 0.9 });
  });

  it('names every wrong option in one error', () => {
    const err = configError(() =>
      resolveAuditOptions({ depth: 0, sample: 1.5, count: -1, separator: '', match: 7 as never }),
    );
    expect(err.message).toBe(
      'Invalid auditKeyspace options:\n' +
        '  - match must be a non-empty string (got 7)\n' +
        '  - separator must be a non-empty string (got )\n' +
        '  - depth must be a positive integer (got 0)\n' +
        '  - sample must be a positive integer (got 1.5)\n' +
        '  - count must be a positive integer (got -1)',
    );
  });
});

describe('parseAuditArgs', () => {
  const env = {};

  it('defaults the URL to REDIS_URL, else the local Redis', () => {
    expect(parseAuditArgs([], env)).toEqual({
      help: false,
      url: 'redis://127.0.0.1:6379',
      cluster: false,
      json: false,
      progress: undefined,
      audit: { match: undefined, separator: undefined, depth: undefined, sample: undefined, count: undefined },
    });
    expect(parseAuditArgs([], { REDIS_URL: 'rediss://cache.internal:6380/2' }).url).toBe(
      'rediss://cache.internal:6380/2',
    );
  });

  it('reads every option', () => {
    const args = parseAuditArgs(
      [
        '--url=redis://u:p@h:1/3',
        '--cluster',
        '--match',
        'cache:*',
        '--separator',
        '/',
        '--depth',
        '3',
        '--sample',
        '50',
        '--count',
        '200',
        '--json',
        '--progress',
      ],
      env,
    );
    expect(args).toEqual({
      help: false,
      url: 'redis://u:p@h:1/3',
      cluster: true,
      json: true,
      progress: true,
      audit: { match: 'cache:*', separator: '/', depth: 3, sample: 50, count: 200 },
    });
  });

  it('lets --no-progress win, and takes -h for help', () => {
    expect(parseAuditArgs(['--progress', '--no-progress'], env).progress).toBe(false);
    expect(parseAuditArgs(['-h'], env).help).toBe(true);
  });

  it.each([
    [['--depth', '0'], "--depth must be a positive integer (got '0')"],
    [['--sample', '1e3'], "--sample must be a positive integer (got '1e3')"],
    [['--count=-5'], "--count must be a positive integer (got '-5')"],
    [['--separator', ''], '--separator must not be empty'],
    [['--url', 'http://u:secret@h'], "--url must start with redis:// or rediss:// (got 'http://u:***@h')"],
    [['extra'], "unexpected argument 'extra'"],
    [['--verbose'], /Unknown option '--verbose'/],
    [['--url'], /argument missing/],
  ])('rejects %p', (argv, message) => {
    expect(() => parseAuditArgs(argv, env)).toThrow(CliUsageError);
    expect(() => parseAuditArgs(argv, env)).toThrow(message);
  });
});

describe('startupAdvisor option', () => {
  it('turns every check on by default and with true, off with false, single ones off with an object', () => {
    const all = { maxmemory: true, evictionPolicy: true, keysWithoutTtl: true };
    expect(resolveAdvisorChecks(undefined)).toEqual(all);
    expect(resolveAdvisorChecks(true)).toEqual(all);
    expect(resolveAdvisorChecks(false)).toEqual({ maxmemory: false, evictionPolicy: false, keysWithoutTtl: false });
    expect(resolveAdvisorChecks({ maxmemory: false })).toEqual({ ...all, maxmemory: false });
  });

  it('is accepted by resolveCacheOptions in each of its forms', () => {
    for (const startupAdvisor of [undefined, true, false, {}, { keysWithoutTtl: false, evictionPolicy: true }]) {
      expect(() => resolveCacheOptions({ startupAdvisor })).not.toThrow();
    }
  });

  it.each([
    [
      'yes',
      "startupAdvisor must be true, false or an object of maxmemory, evictionPolicy, keysWithoutTtl set to booleans (got 'yes')",
    ],
    [
      null,
      'startupAdvisor must be true, false or an object of maxmemory, evictionPolicy, keysWithoutTtl set to booleans (got null)',
    ],
    [
      [],
      'startupAdvisor must be true, false or an object of maxmemory, evictionPolicy, keysWithoutTtl set to booleans (got [])',
    ],
    [
      { maxMemory: false },
      "startupAdvisor has no check 'maxMemory' (it has maxmemory, evictionPolicy, keysWithoutTtl)",
    ],
    [{ maxmemory: 'off' }, "startupAdvisor.maxmemory must be true or false (got 'off')"],
  ])('rejects %p naming the option', (startupAdvisor, message) => {
    const err = configError(() => resolveCacheOptions({ startupAdvisor: startupAdvisor as never }));
    expect(err.message).toBe(`Invalid RedisCacheModule options:\n  - ${message}`);
  });
});
