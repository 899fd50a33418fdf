import type { Cluster, Redis } from 'ioredis';
import { auditKeyspace } from '../audit/audit-keyspace.js';
import type { KeyspaceAuditReport } from '../audit/audit-report.js';
import { formatHumanReport } from '../audit/human-report.js';
import { formatJsonReport } from '../audit/json-report.js';
import { ScanProgress } from '../audit/scan-progress.js';
import { RedisCacheConfigError } from '../errors.js';
import { closeClient } from '../store/close-client.js';
import { parseAuditArgs } from './audit-args.js';
import { CliRedisError, CliUsageError, EXIT_OK, EXIT_RED_FLAGS, type CliIo } from './cli-io.js';
import { describe, connectForAudit } from './redis-connection.js';
import { AUDIT_USAGE } from './usage.js';

/**
 * `nestjs-redis-cache audit`: connects, audits, prints the report on stdout (text or `--json`) and
 * returns the exit code: 1 when the report has red flags. What goes wrong is thrown as a
 * CliUsageError or CliRedisError for run-cli.ts to report.
 */
export async function runAudit(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseAuditArgs(argv, io.env);
  if (args.help) {
    io.stdout.write(AUDIT_USAGE);
    return EXIT_OK;
  }
  const client = await connectForAudit(args.url, args.cluster);
  const progress = (args.progress ?? io.stderr.isTTY === true) ? new ScanProgress(io.stderr) : undefined;
  let report: KeyspaceAuditReport;
  try {
    report = await auditKeyspace(client, {
      ...args.audit,
      onProgress: progress ? (update) => progress.update(update) : undefined,
    });
  } catch (err) {
    if (err instanceof RedisCacheConfigError) throw new CliUsageError(err.message);
    throw new CliRedisError(`the audit failed: ${describe(err)}`, { cause: err });
  } finally {
    progress?.finish();
    await close(client);
  }
  io.stdout.write(args.json ? formatJsonReport(report) : formatHumanReport(report));
  if (!args.cluster && report.server.clusterEnabled) {
    io.stderr.write(
      'Note: this server is a node of a Redis Cluster; only its own keys were audited. ' +
        'Add --cluster to audit every primary.\n',
    );
  }
  return report.redFlags.length > 0 ? EXIT_RED_FLAGS : EXIT_OK;
}

async function close(client: Redis | Cluster): Promise<void> {
  await closeClient(client).catch(() => client.disconnect());
}
