/**
 * Reading the policy server's audit CSV export back on the test side: an RFC 4180 parser
 * written independently of the server's encoder, and the rows turned back into events so a
 * test can compare the CSV with the JSON-lines export.
 */
import assert from 'node:assert/strict';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { AUDIT_CSV_COLUMNS } from '../../common/policy/policyServerApi';

/** RFC 4180 parser for the test's side: quoted cells, doubled quotes, CRLF rows. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  assert.equal(cell + row.join(''), '', 'the CSV ends with CRLF');
  return rows;
}

/** CSV rows back into events: JSON columns parsed, numbers numbered, empty optional cells dropped. */
export function csvEvents(text: string): AuditEvent[] {
  const [header, ...rows] = parseCsv(text);
  assert.deepEqual(header, [...AUDIT_CSV_COLUMNS]);
  return rows.map((cells) => {
    const event: Record<string, unknown> = {};
    header!.forEach((column, i) => {
      const cell = cells[i]!;
      if (cell === '') return;
      if (column === 'client' || column === 'redactions' || column === 'flags') event[column] = JSON.parse(cell);
      else if (column === 'latencyMs') event[column] = Number(cell);
      else event[column] = cell;
    });
    return event as AuditEvent;
  });
}
