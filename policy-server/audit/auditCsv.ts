/**
 * Audit events as CSV rows (RFC 4180): the header is `AUDIT_CSV_COLUMNS`, rows end with
 * CRLF, a cell is quoted when it holds a comma, quote, CR or LF (quotes doubled). Objects
 * and arrays (`client`, `redactions`, `flags`) are JSON text; absent optional fields are
 * empty cells.
 *
 * Formula guard: tool names, resource URIs and client names come from upstreams, agents and
 * clients, none of them trusted. A cell starting with `=`, `+`, `-`, `@`, tab or CR would
 * run as a formula when an auditor opens the file in a spreadsheet, so such a text cell
 * gets a leading `'` (OWASP's advice). Numbers and JSON text never start with those.
 */
import type { AuditEvent } from '../../common/audit/auditEvent';
import { AUDIT_CSV_COLUMNS } from '../../common/policy/policyServerApi';

const NEEDS_QUOTES = /[",\r\n]/;
const FORMULA_START = /^[=+\-@\t\r]/;

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

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  let text: string;
  if (typeof value === 'string') text = FORMULA_START.test(value) ? `'${value}` : value;
  else if (typeof value === 'number') text = String(value);
  else text = JSON.stringify(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
