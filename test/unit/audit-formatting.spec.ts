// How an audit report is shown: units, the human report line by line, the JSON document and the
// progress line.
import type { KeyspaceAuditReport, ServerFigures } from '../../lib/audit/audit-report.js';
import {
  SHOWN_PREFIXES,
  formatBytes,
  formatCount,
  formatDuration,
  formatHumanReport,
} from '../../lib/audit/human-report.js';
import { AUDIT_JSON_SCHEMA, formatJsonReport } from '../../lib/audit/json-report.js';
import { ScanProgress, renderProgress } from '../../lib/audit/scan-progress.js';

const server: ServerFigures = {
  keyspaceHits: 1_284_920,
  keyspaceMisses: 102_847,
  hitRate: 1_284_920 / (1_284_920 + 102_847),
  evictedKeys: 0,
  expiredKeys: 1_234,
  usedMemoryBytes: 1_205_000,
  usedMemoryHuman: '1.15M',
  memFragmentationRatio: 1.12,
  maxmemoryBytes: 0,
  maxmemoryPolicy: 'noeviction',
  configSource: 'config',
  clusterEnabled: false,
};

const report: KeyspaceAuditReport = {
  finishedAt: '2026-12-03T10:00:00.000Z',
  durationMs: 250,
  scope: { nodes: ['127.0.0.1:6379'], match: '*', separator: ':', depth: 2, sample: 1000 },
  totals: { keys: 301, withoutTtl: 21, bytes: 121_512, bytesEstimated: true, prefixes: 3 },
  prefixes: [
    {
      prefix: 'cache:feed',
      keys: 80,
      bytes: 86_400,
      bytesEstimated: true,
      measuredKeys: 28,
      withoutTtl: 0,
      ttl: { minSeconds: 3597.73, p50Seconds: 3597.73, p90Seconds: 3597.73, maxSeconds: 3597.73, sampled: false },
    },
    {
      prefix: 'cache:user',
      keys: 200,
      bytes: 33_600,
      bytesEstimated: false,
      measuredKeys: 200,
      withoutTtl: 1,
      ttl: { minSeconds: 597.7, p50Seconds: 696.7, p90Seconds: 776.7, maxSeconds: 796.7, sampled: true },
    },
    { prefix: 'legacy', keys: 21, bytes: 1_512, bytesEstimated: false, measuredKeys: 21, withoutTtl: 20, ttl: null },
  ],
  prefixesTruncated: false,
  server,
  nodes: [{ address: '127.0.0.1:6379', figures: server }],
  redFlags: [
    {
      code: 'no-maxmemory',
      message: 'No maxmemory set: it grows.',
      advice: 'Set maxmemory.',
      nodes: ['127.0.0.1:6379'],
    },
  ],
};

describe('units', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [12.3 * 1024 * 1024, '12.3 MiB'],
    [3 * 1024 ** 3, '3.0 GiB'],
  ])('%p bytes are %p', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it('marks estimated bytes with ~ and unknown ones as unknown', () => {
    expect(formatBytes(2048, true)).toBe('~2.0 KiB');
    expect(formatBytes(null)).toBe('unknown');
  });

  it.each([
    [0.4, '0.4s'],
    [9.96, '10s'],
    [45, '45s'],
    [60, '1m'],
    [598, '9m 58s'],
    [3_600, '1h'],
    [3_900, '1h 5m'],
    [604_000, '6d 23h'],
  ])('%p seconds are %p', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it('writes counts with thousands separators', () => {
    expect(formatCount(1_000_000)).toBe('1,000,000');
  });
});

describe('formatHumanReport', () => {
  it('shows the scope, the prefix table, the server and the red flags', () => {
    expect(formatHumanReport(report).split('\n')).toEqual([
      "Keyspace audit of 127.0.0.1:6379: match '*', prefixes of up to 2 ':'-separated segment(s)",
      '301 key(s) in 3 prefix(es), audited in 250 ms, 1,204 keys/s',
      '',
      'PREFIX      KEYS      MEMORY  NO TTL  TTL MIN   TTL P50   TTL P90  TTL MAX',
      'cache:feed    80   ~84.4 KiB       0  59m 57s   59m 57s   59m 57s  59m 57s',
      'cache:user   200    32.8 KiB       1   9m 57s  ~11m 36s  ~12m 56s  13m 16s',
      'legacy        21     1.5 KiB      20        -         -         -        -',
      'TOTAL        301  ~118.7 KiB      21',
      '',
      'Server',
      '  used memory          1.15M',
      '  maxmemory            none (0: no limit)',
      '  maxmemory-policy     noeviction',
      '  keyspace hit rate    92.6% (1,284,920 hits, 102,847 misses)',
      '  evicted keys         0',
      '  expired keys         1,234',
      '  fragmentation ratio  1.12',
      '',
      'Red flags (1)',
      '  [no-maxmemory] No maxmemory set: it grows.',
      '    What to do: Set maxmemory.',
      '',
    ]);
  });

  it('shows key names read from Redis with their control characters escaped, never raw', () => {
    const hostile = 'evil\x1b]0;owned\x07:\n[no-maxmemory] forged\u202e';
    const prefixes = [{ ...report.prefixes[0]!, prefix: hostile }];
    const redFlags = [{ ...report.redFlags[0]!, message: `keys without TTL: ${hostile}` }];
    const text = formatHumanReport({ ...report, prefixes, redFlags });
    // eslint-disable-next-line no-control-regex -- no control character may reach the terminal
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
    expect(text).toContain('evil\\x1b]0;owned\\x07:\\x0a[no-maxmemory] forged\\u202e');
    expect(text.split('\n').filter((line) => line.includes('[no-maxmemory] forged'))).toHaveLength(2);
  });

  it('says so when nothing matched, no flag was raised, and figures are unknown', () => {
    const unknown: ServerFigures = {
      ...server,
      keyspaceHits: null,
      keyspaceMisses: null,
      hitRate: null,
      evictedKeys: null,
      usedMemoryHuman: null,
      memFragmentationRatio: null,
      maxmemoryBytes: null,
      maxmemoryPolicy: null,
      configSource: 'unknown',
    };
    const text = formatHumanReport({
      ...report,
      durationMs: 0,
      totals: { keys: 0, withoutTtl: 0, bytes: 0, bytesEstimated: false, prefixes: 0 },
      prefixes: [],
      server: unknown,
      redFlags: [],
    });
    expect(text).toContain('0 key(s) in 0 prefix(es), audited in 0 ms\n');
    expect(text).toContain('\nNo keys matched.\n');
    expect(text).toContain('  maxmemory            unknown\n');
    expect(text).toContain('  keyspace hit rate    unknown\n');
    expect(text).toContain('  evicted keys         unknown\n');
    expect(text).toMatch(/No red flags\.\n$/);
  });

  it('tells where maxmemory was read when CONFIG GET was refused, and when MEMORY USAGE was', () => {
    const text = formatHumanReport({
      ...report,
      server: { ...server, configSource: 'info', maxmemoryBytes: 2 * 1024 ** 3, hitRate: null, keyspaceHits: 0 },
      memoryUsageRefused: "NOPERM this user has no permissions to run the 'memory|usage' command",
    });
    expect(text).toContain('  maxmemory            2.0 GiB (from INFO: CONFIG GET refused)\n');
    expect(text).toContain('  keyspace hit rate    n/a (no lookups yet)\n');
    expect(text).toContain('Memory per prefix unknown: Redis refused MEMORY USAGE (NOPERM');
  });

  it(`lists at most ${SHOWN_PREFIXES} prefixes, and says how many more --json has`, () => {
    const prefixes = Array.from({ length: SHOWN_PREFIXES + 3 }, (_, i) => ({
      ...report.prefixes[2]!,
      prefix: `p${i}`,
    }));
    const lines = formatHumanReport({ ...report, prefixes, prefixesTruncated: true }).split('\n');
    expect(lines.filter((line) => /^p\d+ /.test(line))).toHaveLength(SHOWN_PREFIXES);
    const more = lines.indexOf('... and 3 more prefix(es) (--json lists all)');
    expect(lines[more + 1]).toMatch(/^TOTAL /);
    expect(lines).toContain('More distinct prefixes than maxPrefixes: the rest are counted under (other prefixes).');
  });

  it('shows each node of a Cluster in a table of its own', () => {
    const nodes = [
      { address: '10.0.0.1:7000', figures: server },
      { address: '10.0.0.2:7000', figures: { ...server, maxmemoryBytes: 1024 ** 3, maxmemoryPolicy: 'allkeys-lru' } },
    ];
    const lines = formatHumanReport({ ...report, nodes }).split('\n');
    expect(lines).toContain('Servers (2 primaries, together)');
    expect(lines.slice(lines.indexOf('Servers (2 primaries, together)') + 9, -5)).toEqual([
      '  NODE            USED           MAXMEMORY       POLICY  FRAGMENTATION  HIT RATE',
      '  10.0.0.1:7000  1.15M  none (0: no limit)   noeviction           1.12     92.6%',
      '  10.0.0.2:7000  1.15M             1.0 GiB  allkeys-lru           1.12     92.6%',
    ]);
  });
});

describe('formatJsonReport', () => {
  it('prints the report as one JSON document led by its schema name', () => {
    const text = formatJsonReport(report);
    expect(text.endsWith('}\n')).toBe(true);
    const document = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(document)[0]).toBe('schema');
    expect(document).toEqual({ schema: AUDIT_JSON_SCHEMA, ...report });
  });
});

describe('progress', () => {
  it('draws a bar against DBSIZE, and only a count without a total', () => {
    expect(renderProgress({ scanned: 380_000, total: 1_000_000 }, 2_000)).toBe(
      '[#########---------------]  38%  380,000 / 1,000,000 keys  190,000 keys/s',
    );
    expect(renderProgress({ scanned: 1_200, total: 1_000 }, 0)).toBe(
      '[########################] 100%  1,200 / 1,000 keys',
    );
    expect(renderProgress({ scanned: 5_000, total: undefined }, 1_000)).toBe('Scanning: 5,000 keys  5,000 keys/s');
  });

  it('redraws in place at most every 100 ms, and erases itself at the end', () => {
    const written: string[] = [];
    let now = 0;
    const progress = new ScanProgress({ write: (text: string) => written.push(text) }, () => now);
    progress.update({ scanned: 0, total: 10 });
    now = 50;
    progress.update({ scanned: 5, total: 10 }); // too soon
    now = 120;
    progress.update({ scanned: 6, total: 10 });
    now = 130;
    progress.update({ scanned: 10, total: 10 }, true);
    progress.finish();
    progress.finish(); // nothing left to erase
    expect(written).toEqual([
      '\r[------------------------]   0%  0 / 10 keys\x1b[K',
      '\r[##############----------]  60%  6 / 10 keys  50 keys/s\x1b[K',
      '\r[########################] 100%  10 / 10 keys  77 keys/s\x1b[K',
      '\r\x1b[K',
    ]);
  });
});
