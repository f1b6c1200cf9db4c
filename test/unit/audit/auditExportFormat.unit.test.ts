/**
 * The one audit export format (common/audit/auditExportFormat.ts) that the policy server's
 * `/v1/audit/export` and the extension's Audit view both write: JSONL, and CSV with RFC 4180
 * quoting and spreadsheet formulas neutralised.
 */
import assert from 'node:assert/strict';
import { AuditEventSchema, type AuditEvent } from '../../../common/audit/auditEvent';
import {
  AUDIT_CSV_COLUMNS,
  auditCsvHeader,
  auditCsvRow,
  auditExportText,
  isAuditExportFormat,
} from '../../../common/audit/auditExportFormat';
import { sampleEvent } from './auditTestEvents';

describe('audit export format', () => {
  const events = [
    sampleEvent(0, { server: 'github', tool: 'delete_repo', decision: 'confirm-approved', reviewer: 'bob@example.com' }),
    sampleEvent(1, { server: 'github', tool: 'list_issues', decision: 'allow', rule: 'engineers-read' }),
    sampleEvent(2, { server: 'jira', tool: 'create_ticket', decision: 'deny', flags: ['injection:model-instruction'] }),
  ];

  it('knows its formats', () => {
    assert.ok(isAuditExportFormat('jsonl'));
    assert.ok(isAuditExportFormat('csv'));
    for (const bad of ['xlsx', 'CSV', '', undefined, null, 1]) assert.ok(!isAuditExportFormat(bad), String(bad));
  });

  it('writes JSONL: one event per line, the same events back', () => {
    const text = auditExportText('jsonl', events);
    assert.equal(text.split('\n').length, events.length + 1);
    assert.deepEqual(
      text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as unknown),
      events,
    );
  });

  it('has one CSV column per event field, in schema order', () => {
    assert.deepEqual([...AUDIT_CSV_COLUMNS], Object.keys(AuditEventSchema.shape));
    assert.equal(auditCsvHeader(), `${AUDIT_CSV_COLUMNS.join(',')}\r\n`);
  });

  it('writes CSV with a header, RFC 4180 quoting and formula cells neutralised', () => {
    const hostile = sampleEvent(1, {
      tool: '=HYPERLINK("http://x","y")',
      client: { name: 'a,"b"\nc', version: '1' },
      rule: '@sum',
      reviewer: 'd,"e"\nf',
      redactions: { 'aws-access-key': 2 },
    });
    const text = auditExportText('csv', [hostile]);
    const lines = text.split('\r\n');
    assert.equal(lines[0], AUDIT_CSV_COLUMNS.join(','));
    assert.equal(lines.length, 3, 'a header, one row, CRLF after each');
    assert.ok(lines[1]!.includes(`"'=HYPERLINK(""http://x"",""y"")"`), 'a formula is prefixed and quoted');
    assert.ok(lines[1]!.includes(`,'@sum,`), 'a leading @ is prefixed');
    assert.ok(lines[1]!.includes(',"{""aws-access-key"":2}",'), 'redaction counts, not values');
    assert.ok(text.includes('"d,""e""\nf"'), 'commas, quotes and newlines are quoted');
    assert.ok(lines[1]!.includes('"{""name"":""a,\\""b\\""\\nc"",""version"":""1""}"'), 'the client is JSON text, quoted');
  });

  it('quotes per RFC 4180, writes nested fields as JSON text and leaves absent fields empty', () => {
    const event = sampleEvent(1, {
      id: '01JNB3Q6N8W4V5X6Y7Z8A9B0CD',
      time: '2025-03-01T12:00:00.000Z',
      user: 'alice',
      client: { name: 'Code "Insiders", beta', version: '1.0' },
      tool: 'line one\nline two',
      rule: undefined,
      redactions: { 'aws-access-key': 2 },
      flags: ['injection-marker'],
      latencyMs: 3.25,
    });
    delete (event as Partial<AuditEvent>).rule;
    assert.equal(
      auditCsvRow(event),
      '01JNB3Q6N8W4V5X6Y7Z8A9B0CD,2025-03-01T12:00:00.000Z,alice,"{""name"":""Code \\""Insiders\\"", beta"",""version"":""1.0""}",github,tools/call,' +
        '"line one\nline two",allow,,,' +
        'ab'.repeat(32) +
        ',ok,"{""aws-access-key"":2}","[""injection-marker""]",3.25\r\n',
    );
  });

  it('quotes cells a spreadsheet using ; or tab as its separator would split', () => {
    for (const tool of ["x;=cmd|' /C calc'!A0", 'a\t=1']) {
      const row = auditCsvRow(sampleEvent(1, { tool }));
      assert.ok(row.includes(`"${tool}"`), `${JSON.stringify(tool)} is quoted whole: ${row}`);
    }
  });

  it('keeps a spreadsheet from running a value as a formula', () => {
    for (const tool of ['=HYPERLINK("http://x")', '+1', '-2', '@SUM(A1)', '\tx', '\rx', '\0=cmd']) {
      const cells = auditCsvRow(sampleEvent(1, { tool })).split(',');
      assert.ok(
        cells.some((cell) => cell.startsWith(`'${tool.slice(0, 1)}`) || cell.startsWith(`"'${tool.slice(0, 1)}`)),
        `${tool} is guarded`,
      );
    }
  });
});
