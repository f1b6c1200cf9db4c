/**
 * Writes audit events for a security team's tools: JSONL (one event per line, the shape the
 * policy server stores) or CSV (RFC 4180 quoting). CSV cells that a spreadsheet would run
 * as a formula (=, +, -, @, tab, CR first) are prefixed with `'`: tool names and client
 * names come from MCP servers and clients, which are not trusted (CWE-1236).
 */
import type { AuditEvent } from '../../common/audit/auditEvent';

export function auditJsonl(events: readonly AuditEvent[]): string {
  let out = '';
  for (const event of events) out += JSON.stringify(event) + '\n';
  return out;
}

const CSV_COLUMNS: ReadonlyArray<[string, (event: AuditEvent) => string | number | undefined]> = [
  ['time', (e) => e.time],
  ['user', (e) => e.user],
  ['server', (e) => e.server],
  ['method', (e) => e.method],
  ['tool', (e) => e.tool],
  ['decision', (e) => e.decision],
  ['rule', (e) => e.rule],
  ['reviewer', (e) => e.reviewer],
  ['status', (e) => e.status],
  ['latency_ms', (e) => e.latencyMs],
  [
    'redactions',
    (e) =>
      Object.entries(e.redactions)
        .map(([kind, count]) => `${kind}=${count}`)
        .join(' '),
  ],
  ['flags', (e) => e.flags.join(' ')],
  ['client', (e) => `${e.client.name} ${e.client.version}`.trim()],
  ['args_digest', (e) => e.argsDigest],
  ['id', (e) => e.id],
];

export function auditCsv(events: readonly AuditEvent[]): string {
  let out = CSV_COLUMNS.map(([name]) => name).join(',') + '\r\n';
  for (const event of events) out += CSV_COLUMNS.map(([, value]) => csvCell(value(event))).join(',') + '\r\n';
  return out;
}

function csvCell(value: string | number | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return String(value);
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
