import type { KeyspaceAuditReport, PrefixReport, ServerFigures } from './audit-report.js';
import { printable } from './printable.js';

/** Rows of the prefix table in the human report; `--json` lists every prefix. */
export const SHOWN_PREFIXES = 50;

/** `1,234,567`. */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** Bytes in binary units (`512 B`, `1.5 KiB`, `12.3 MiB`), with `~` in front when estimated. */
export function formatBytes(bytes: number | null, estimated = false): string {
  if (bytes === null) return 'unknown';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
  return estimated ? `~${text}` : text;
}

/** A TTL in its two largest units: `45s`, `9m 58s`, `1h 5m`, `6d 23h`; `0.4s` under 10 seconds. */
export function formatDuration(seconds: number): string {
  if (seconds < 10) return `${Number(seconds.toFixed(1))}s`;
  const whole = Math.floor(seconds);
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ];
  const first = units.findIndex(([, size]) => whole >= size);
  const [bigName, bigSize] = units[first]!;
  const big = Math.floor(whole / bigSize);
  const rest = units[first + 1];
  if (!rest) return `${big}${bigName}`;
  const small = Math.floor((whole - big * bigSize) / rest[1]);
  return small === 0 ? `${big}${bigName}` : `${big}${bigName} ${small}${rest[0]}`;
}

/** The report as text for a terminal: scope, the prefix table, the server's figures, the red flags. */
export function formatHumanReport(report: KeyspaceAuditReport): string {
  const lines: string[] = [];
  const { scope, totals } = report;
  lines.push(
    `Keyspace audit of ${scope.nodes.join(', ')}: match '${scope.match}', prefixes of up to ${scope.depth} ` +
      `'${scope.separator}'-separated segment(s)`,
  );
  const rate =
    report.durationMs > 0 ? `, ${formatCount(Math.round((totals.keys * 1000) / report.durationMs))} keys/s` : '';
  const took =
    report.durationMs < 10_000 ? `${formatCount(report.durationMs)} ms` : formatDuration(report.durationMs / 1000);
  lines.push(
    `${formatCount(totals.keys)} key(s) in ${formatCount(totals.prefixes)} prefix(es), audited in ${took}${rate}`,
  );
  lines.push('');
  lines.push(...prefixTable(report));
  if (report.memoryUsageRefused !== undefined) {
    lines.push(`Memory per prefix unknown: Redis refused MEMORY USAGE (${report.memoryUsageRefused}).`);
  }
  if (report.prefixesTruncated) {
    lines.push('More distinct prefixes than maxPrefixes: the rest are counted under (other prefixes).');
  }
  lines.push('');
  lines.push(...serverSection(report));
  lines.push('');
  lines.push(...redFlagSection(report));
  // Red flags name prefixes too: nothing read from Redis reaches the terminal raw.
  return `${lines.map(printable).join('\n')}\n`;
}

function prefixTable(report: KeyspaceAuditReport): string[] {
  if (report.prefixes.length === 0) return ['No keys matched.'];
  const header = ['PREFIX', 'KEYS', 'MEMORY', 'NO TTL', 'TTL MIN', 'TTL P50', 'TTL P90', 'TTL MAX'];
  const row = (prefix: PrefixReport): string[] => {
    const ttl = prefix.ttl;
    const mark = ttl?.sampled ? '~' : '';
    return [
      prefix.prefix === '' ? '(empty)' : printable(prefix.prefix),
      formatCount(prefix.keys),
      formatBytes(prefix.bytes, prefix.bytesEstimated),
      formatCount(prefix.withoutTtl),
      ttl ? formatDuration(ttl.minSeconds) : '-',
      ttl ? mark + formatDuration(ttl.p50Seconds) : '-',
      ttl ? mark + formatDuration(ttl.p90Seconds) : '-',
      ttl ? formatDuration(ttl.maxSeconds) : '-',
    ];
  };
  const rows = report.prefixes.slice(0, SHOWN_PREFIXES).map(row);
  const hidden = report.prefixes.length - rows.length;
  const { totals } = report;
  const total = [
    'TOTAL',
    formatCount(totals.keys),
    formatBytes(totals.bytes, totals.bytesEstimated),
    formatCount(totals.withoutTtl),
    '',
    '',
    '',
    '',
  ];
  const lines = table([header, ...rows, total]);
  if (hidden > 0)
    lines.splice(lines.length - 1, 0, `... and ${formatCount(hidden)} more prefix(es) (--json lists all)`);
  return lines;
}

/** Columns padded to their widest cell: the first left-aligned, the others right-aligned. */
function table(rows: readonly string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd(),
  );
}

function serverSection(report: KeyspaceAuditReport): string[] {
  const lines = [report.nodes.length > 1 ? `Servers (${report.nodes.length} primaries, together)` : 'Server'];
  lines.push(...figureLines(report.server).map(([name, value]) => `  ${name.padEnd(21)}${value}`));
  if (report.nodes.length > 1) {
    lines.push('');
    lines.push(
      ...table([
        ['NODE', 'USED', 'MAXMEMORY', 'POLICY', 'FRAGMENTATION', 'HIT RATE'],
        ...report.nodes.map(({ address, figures }) => [
          address,
          figures.usedMemoryHuman ?? 'unknown',
          maxmemoryText(figures),
          figures.maxmemoryPolicy ?? 'unknown',
          figures.memFragmentationRatio?.toFixed(2) ?? 'unknown',
          hitRateText(figures),
        ]),
      ]).map((line) => `  ${line}`),
    );
  }
  return lines;
}

function figureLines(figures: ServerFigures): Array<[string, string]> {
  const lookups =
    figures.hitRate !== null && figures.keyspaceHits !== null && figures.keyspaceMisses !== null
      ? ` (${formatCount(figures.keyspaceHits)} hits, ${formatCount(figures.keyspaceMisses)} misses)`
      : '';
  const source = figures.configSource === 'info' ? ' (from INFO: CONFIG GET refused)' : '';
  const known = (value: number | null) => (value === null ? 'unknown' : formatCount(value));
  return [
    ['used memory', figures.usedMemoryHuman ?? 'unknown'],
    ['maxmemory', maxmemoryText(figures) + source],
    ['maxmemory-policy', figures.maxmemoryPolicy ?? 'unknown'],
    ['keyspace hit rate', hitRateText(figures) + lookups],
    ['evicted keys', known(figures.evictedKeys)],
    ['expired keys', known(figures.expiredKeys)],
    ['fragmentation ratio', figures.memFragmentationRatio?.toFixed(2) ?? 'unknown'],
  ];
}

function maxmemoryText(figures: ServerFigures): string {
  if (figures.maxmemoryBytes === null) return 'unknown';
  return figures.maxmemoryBytes === 0 ? 'none (0: no limit)' : formatBytes(figures.maxmemoryBytes);
}

function hitRateText({ hitRate, keyspaceHits }: ServerFigures): string {
  if (hitRate !== null) return `${(hitRate * 100).toFixed(1)}%`;
  return keyspaceHits === null ? 'unknown' : 'n/a (no lookups yet)';
}

function redFlagSection(report: KeyspaceAuditReport): string[] {
  if (report.redFlags.length === 0) return ['No red flags.'];
  const lines = [`Red flags (${report.redFlags.length})`];
  for (const flag of report.redFlags) {
    lines.push(`  [${flag.code}] ${flag.message}`);
    lines.push(`    What to do: ${flag.advice}`);
  }
  return lines;
}
