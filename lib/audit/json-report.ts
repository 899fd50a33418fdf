import type { KeyspaceAuditReport } from './audit-report.js';

/** Names the shape of the JSON document; a change that breaks readers bumps it. */
export const AUDIT_JSON_SCHEMA = 'nestjs-redis-cache/keyspace-audit@1';

/** The document `audit --json` prints: the report, led by its schema name. */
export type AuditJsonDocument = { readonly schema: typeof AUDIT_JSON_SCHEMA } & KeyspaceAuditReport;

export function toJsonDocument(report: KeyspaceAuditReport): AuditJsonDocument {
  return { schema: AUDIT_JSON_SCHEMA, ...report };
}

/** The report as one JSON document (indented: people read it too), with a final newline. */
export function formatJsonReport(report: KeyspaceAuditReport): string {
  return `${JSON.stringify(toJsonDocument(report), null, 2)}\n`;
}
