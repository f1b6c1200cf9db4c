/**
 * The audit's write-ahead intents (gateway/audit/intentJournal.ts) with the real spool and
 * the real CallAuditor: an answered call always has something durable behind it, its
 * outcome event follows with the same id, and a call whose outcome never reached the spool
 * is recorded as `unknown` when the spool is opened again (once).
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { AuditEvent } from '../../../common/audit/auditEvent';
import { createLogger } from '../../../common/log/logger';
import { AuditSpool } from '../../../gateway/audit/auditSpool';
import { CallAuditor, type CallOutcome } from '../../../gateway/audit/callAuditor';
import { INTENT_JOURNAL_FILE, IntentJournal } from '../../../gateway/audit/intentJournal';
import { listSegments } from '../../../gateway/audit/auditSegment';
import { removeScratchDirs, scratchDir } from './auditTestEvents';

const logged: string[] = [];
const log = createLogger((line) => logged.push(line), 'warn');

function outcome(text: string, status: CallOutcome['status'] = 'ok'): CallOutcome {
  const request: JSONRPCRequest = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text } } };
  return {
    serverId: 'probe',
    client: { name: 'test', version: '1' },
    request,
    startedAt: performance.now(),
    receivedAt: new Date().toISOString(),
    decision: 'allow',
    status,
  };
}

/** Every event in the spool's segments, as written. */
function spooled(dir: string): AuditEvent[] {
  return listSegments(dir).flatMap((segment) =>
    readFileSync(segment.path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { kind: string; event?: AuditEvent })
      .filter((record) => record.kind === 'event')
      .map((record) => record.event!),
  );
}

describe('audit intents (write-ahead, so the answer never waits for the outcome event)', () => {
  after(removeScratchDirs);
  let opened: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const item of opened.reverse()) await item.close().catch(() => undefined);
    opened = [];
  });

  async function openAudit(dir: string) {
    const spool = await AuditSpool.open({ dir });
    const journal = await IntentJournal.open(dir, spool, log);
    opened.push(spool, journal);
    const heard: AuditEvent[] = [];
    const auditor = new CallAuditor(
      spool,
      () => 'alice',
      log,
      (event) => heard.push(event),
      journal,
    );
    return { spool, journal, auditor, heard };
  }

  async function closeAudit({ spool, journal }: { spool: AuditSpool; journal: IntentJournal }) {
    await journal.close();
    await spool.close();
    opened = opened.filter((item) => item !== spool && item !== journal);
  }

  it('answers once the intent is durable; the outcome event follows under the same id and the intent is settled', async () => {
    const dir = scratchDir();
    const audit = await openAudit(dir);
    const intent = audit.auditor.intend(outcome('one', 'unknown'))!;
    assert.ok(intent, 'a journal makes intents');
    assert.equal(await intent.durable, true);
    const journal = readFileSync(join(dir, INTENT_JOURNAL_FILE), 'utf8');
    assert.match(journal, new RegExp(`"id":"${intent.event.id}"`), 'the intent is on disk before the call goes on');
    assert.match(journal, /"status":"unknown"/);
    assert.equal(statSync(join(dir, INTENT_JOURNAL_FILE)).mode & 0o777, 0o600);

    assert.equal(await audit.auditor.record(outcome('one'), intent), true);
    while (audit.heard.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(audit.heard[0]!.id, intent.event.id);
    assert.equal(audit.heard[0]!.status, 'ok');
    await closeAudit(audit);
    assert.equal(readFileSync(join(dir, INTENT_JOURNAL_FILE), 'utf8'), '', 'a settled journal is emptied on close');

    await closeAudit(await openAudit(dir));
    const events = spooled(dir);
    assert.deepEqual(
      events.map((e) => [e.id, e.status]),
      [[intent.event.id, 'ok']],
      'one event for the call, no unknown one',
    );
  });

  it('records a call whose outcome never reached the spool as unknown when the spool opens again, once', async () => {
    const dir = scratchDir();
    const audit = await openAudit(dir);
    const settled = audit.auditor.intend(outcome('settled', 'unknown'))!;
    await audit.auditor.record(outcome('settled'), settled);
    while (audit.heard.length === 0) await new Promise((r) => setTimeout(r, 5));
    const lost = audit.auditor.intend(outcome('lost', 'unknown'))!;
    assert.equal(await lost.durable, true); // answered; then the gateway "dies" before the outcome is written
    await closeAudit(audit);
    // An intent whose write was interrupted was never acknowledged: no call waited on it.
    appendFileSync(join(dir, INTENT_JOURNAL_FILE), '{"afterSeq":3,"event":{"id":"torn');

    const reopened = await openAudit(dir);
    const events = spooled(dir);
    const unknown = events.filter((e) => e.status === 'unknown');
    assert.deepEqual(
      unknown.map((e) => e.id),
      [lost.event.id],
      'the lost call, and neither the settled one nor the torn line',
    );
    assert.equal(unknown[0]!.tool, 'echo');
    assert.equal(unknown[0]!.user, 'alice');
    assert.equal(unknown[0]!.argsDigest, reopened.spool.digestArguments({ text: 'lost' }), 'the same digest the outcome would have had');
    assert.equal(readFileSync(join(dir, INTENT_JOURNAL_FILE), 'utf8'), '', 'recovered intents leave the journal');
    assert.ok(
      logged.some((line) => line.includes('status unknown') && line.includes('"calls":1')),
      'the recovery is logged with how many calls',
    );
    await closeAudit(reopened);

    await closeAudit(await openAudit(dir));
    assert.equal(spooled(dir).filter((e) => e.status === 'unknown').length, 1, 'recorded once, not on every open');
  });

  it('stays small under steady load: rewritten with only the unsettled intents, which still recover', async function () {
    this.timeout(30_000);
    const dir = scratchDir();
    const audit = await openAudit(dir);
    const journalFile = join(dir, INTENT_JOURNAL_FILE);
    let largest = 0;
    // Always one call in flight (an intent never settled before the next is made), so the journal is never idle.
    let previous = audit.auditor.intend(outcome('call-0', 'unknown'))!;
    const first = previous.event.id;
    await previous.durable;
    for (let i = 1; i <= 1500; i++) {
      const next = audit.auditor.intend(outcome(`call-${i}`, 'unknown'))!;
      await next.durable;
      await audit.auditor.record(outcome(`call-${i - 1}`), previous);
      previous = next;
      if (i % 50 === 0) {
        while (audit.heard.length < i) await new Promise((r) => setTimeout(r, 2));
        largest = Math.max(largest, statSync(journalFile).size);
      }
    }
    const oneIntent = readFileSync(journalFile, 'utf8').split('\n')[0]!.length;
    assert.ok(1500 * oneIntent > 1.5 * 320 * 1024, `enough was written to need rewriting (${oneIntent} bytes an intent)`);
    assert.ok(largest < 320 * 1024, `the journal grew to ${largest} bytes`);
    assert.ok(!readFileSync(journalFile, 'utf8').includes(first), 'settled intents were dropped');
    await closeAudit(audit); // call-1500 never got its outcome

    const reopened = await openAudit(dir);
    const unknown = spooled(dir).filter((e) => e.status === 'unknown');
    assert.deepEqual(
      unknown.map((e) => e.id),
      [previous.event.id],
      'after rewrites, exactly the one call in flight is recorded as unknown',
    );
    await closeAudit(reopened);
  });

  it('falls back to a durable outcome event before the answer when the intent cannot be written, and withholds when neither can', async () => {
    const dir = scratchDir();
    const audit = await openAudit(dir);
    await audit.journal.close();
    const intent = audit.auditor.intend(outcome('fallback', 'unknown'))!;
    assert.equal(await intent.durable, false);
    assert.equal(await audit.auditor.record(outcome('fallback'), intent), true);
    assert.deepEqual(
      audit.heard.map((e) => [e.id, e.status]),
      [[intent.event.id, 'ok']],
      'the outcome event was durable before record resolved',
    );
    assert.deepEqual(
      spooled(dir).map((e) => e.id),
      [intent.event.id],
    );

    await audit.spool.close();
    const nowhere = audit.auditor.intend(outcome('nowhere', 'unknown'))!;
    assert.equal(await audit.auditor.record(outcome('nowhere'), nowhere), false, 'nothing durable: the caller withholds the result');
    assert.equal(audit.heard.length, 1, 'no event for a call that could not be recorded');
  });
});
