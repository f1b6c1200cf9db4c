/**
 * The two formats audit events are exported in, by the policy server (`/v1/audit/export`,
 * `gatehouse policy audit`) and by the extension (Export in the Audit view): one file format
 * whoever writes it.
 *  - JSONL: one `AuditEvent` JSON object per line.
 *  - CSV (RFC 4180): the header is `AUDIT_CSV_COLUMNS` (every event field, in schema order),
 *    rows end with CRLF, a cell is quoted when it holds a comma, quote, CR or LF (quotes
 *    doubled); `client`, `redactions` and `flags` are JSON text; an absent field is an empty cell.
 *
 * Formula guard (CWE-1236): tool names, resource URIs and client names come from upstreams,
 * agents and clients, none of them trusted. A cell starting with `=`, `+`, `-`, `@`, tab or CR
 * would run as a formula when an auditor opens the file in a spreadsheet, so such a cell gets a
 * leading `'` (OWASP's advice).
 *
 * No Node imports: the Audit webview uses `AuditExportFormat` in the browser.
 */
import type { AuditEvent } from './auditEvent';

export const AUDIT_EXPORT_FORMATS = ['jsonl', 'csv'] as const;
export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];

export function isAuditExportFormat(value: unknown): value is AuditExportFormat {
  return (AUDIT_EXPORT_FORMATS as readonly unknown[]).includes(value);
}

export const AUDIT_CSV_COLUMNS = [
  'id',
  'time',
  'user',
  'client',
  'server',
  'method',
  'tool',
  'decision',
  'rule',
  'reviewer',
  'argsDigest',
  'status',
  'redactions',
  'flags',
  'latencyMs',
] as const satisfies ReadonlyArray<keyof AuditEvent>;

/**
 * Quoted when a spreadsheet could split the cell: the RFC 4180 characters, and `;` and tab,
 * which spreadsheets in many locales take as the separator (an unquoted `x;=cmd` would
 * start a new cell with a formula the guard below never saw).
 */
const NEEDS_QUOTES = /[",;\t\r\n]/;
/** A cell a spreadsheet would run as a formula (or whose first character it drops, NUL). */
const FORMULA_START = /^[=+\-@\t\r\0]/;

export function auditJsonlLine(event: AuditEvent): string {
  return JSON.stringify(event) + '\n';
}

export function auditCsvHeader(): string {
  return AUDIT_CSV_COLUMNS.join(',') + '\r\n';
}

export function auditCsvRow(event: AuditEvent): string {
  let row = '';
  for (let i = 0; i < AUDIT_CSV_COLUMNS.length; i++) {
    if (i > 0) row += ',';
    row += csvCell(event[AUDIT_CSV_COLUMNS[i]!]);
  }
  return row + '\r\n';
}

/** A whole export in `format`: the CSV header first, then one line or row per event. */
export function auditExportText(format: AuditExportFormat, events: readonly AuditEvent[]): string {
  let out = format === 'csv' ? auditCsvHeader() : '';
  for (const event of events) out += format === 'csv' ? auditCsvRow(event) : auditJsonlLine(event);
  return out;
}

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  let text = typeof value === 'string' ? value : typeof value === 'number' ? String(value) : JSON.stringify(value);
  // Every cell, not only strings: a number or JSON text never starts with these today, and if one did it would be guarded too.
  if (FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
