import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditSpool, AuditSpoolDamagedError, AuditSpoolFailedError } from '../../../gateway/audit/auditSpool';
import { listSegments } from '../../../gateway/audit/auditSegment';
import { verifyAuditSpool } from '../../../gateway/audit/auditVerifier';
import { removeScratchDirs, sampleEvent, scratchDir } from './auditTestEvents';

function segmentLines(dir: string): Array<{ seq: number; kind: string; event?: { id: string } }> {
  return listSegments(dir).flatMap((segment) =>
    readFileSync(segment.path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line)),
  );
}

async function verifies(dir: string) {
  const result = await verifyAuditSpool(dir);
  assert.ok(result.ok, result.ok ? '' : `${result.bad.segment}:${result.bad.line} ${result.bad.problem}`);
  return result.summary;
}

describe('audit spool', () => {
  after(removeScratchDirs);
  const open: AuditSpool[] = [];
  const openSpool = async (...args: Parameters<typeof AuditSpool.open>) => {
    const spool = await AuditSpool.open(...args);
    open.push(spool);
    return spool;
  };
  afterEach(async () => {
    for (const spool of open.splice(0)) await spool.close().catch(() => undefined);
  });

  it('keeps a private folder: 0700, every file 0600', async () => {
    const dir = scratchDir();
    const spool = await openSpool({ dir });
    await spool.append(sampleEvent(1));
    await spool.markShipped(1);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const name of readdirSync(dir)) assert.equal(statSync(join(dir, name)).mode & 0o777, 0o600, name);
    assert.deepEqual(readdirSync(dir).sort(), [
      'args-digest.key',
      'audit-0000000000000001.jsonl',
      'checkpoint-key.json',
      'shipped.json',
      'spool.lock',
    ]);
  });

  it('chains every record and verifies', async () => {
    const dir = scratchDir();
    const spool = await openSpool({ dir });
    const seqs: number[] = [];
    for (let i = 0; i < 20; i++) seqs.push(await spool.append(sampleEvent(i)));
    assert.deepEqual(
      seqs,
      Array.from({ length: 20 }, (_, i) => i + 2),
      'seq 1 is the opening checkpoint',
    );
    await spool.close();
    const records = segmentLines(dir);
    assert.deepEqual(
      records.map((r) => r.kind),
      ['checkpoint', ...Array(20).fill('event'), 'checkpoint'],
    );
    const summary = await verifies(dir);
    assert.equal(summary.events, 20);
    assert.equal(summary.lastSeq, 22);
    assert.equal(summary.lastCheckpoint?.reason, 'close');
  });

  it('group-commits 200 concurrent appends: all durable, seq in call order, far fewer syncs', async () => {
    const dir = scratchDir();
    const spool = await openSpool({ dir, checkpointEveryEvents: 1_000_000 });
    const events = Array.from({ length: 200 }, (_, i) => sampleEvent(i));
    const seqs = await Promise.all(events.map((event) => spool.append(event)));
    assert.deepEqual(
      seqs,
      Array.from({ length: 200 }, (_, i) => i + 2),
    );
    const stats = spool.stats();
    assert.equal(stats.eventsAppended, 200);
    assert.ok(stats.commits <= 3, `200 appends took ${stats.commits} commits`);
    assert.equal(stats.lastSeq, 201);
    // Everything acknowledged is already on disk, in the order appended.
    const onDisk = segmentLines(dir).filter((r) => r.kind === 'event');
    assert.deepEqual(
      onDisk.map((r) => r.event!.id),
      events.map((e) => e.id),
    );
    await verifies(dir);

    // Waves arriving while a sync runs share the next one.
    const waves = await Promise.all(
      Array.from({ length: 10 }, async (_, wave) => {
        await new Promise((resolve) => setImmediate(resolve));
        return Promise.all(Array.from({ length: 20 }, (_, i) => spool.append(sampleEvent(wave * 20 + i))));
      }),
    );
    const all = waves.flat();
    assert.equal(new Set(all).size, 200);
    assert.ok(spool.stats().commits - stats.commits < 200);
  });

  it('rejects an event that does not match the schema, and keeps going', async () => {
    const spool = await openSpool({ dir: scratchDir() });
    await assert.rejects(spool.append({ ...sampleEvent(1), decision: 'perhaps' as never }), /invalid audit event: decision/);
    assert.equal(await spool.append(sampleEvent(2)), 2);
  });

  it('rotates segments by size, each starting with a checkpoint, the chain running across them', async () => {
    const dir = scratchDir();
    const spool = await openSpool({ dir, maxSegmentBytes: 8 * 1024 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => spool.append(sampleEvent(i))));
    for (let i = 0; i < 50; i++) await spool.append(sampleEvent(i));
    await spool.close();
    const segments = listSegments(dir);
    assert.ok(segments.length >= 8, `${segments.length} segments`);
    for (const segment of segments) {
      const content = readFileSync(segment.path, 'utf8');
      const first = JSON.parse(content.slice(0, content.indexOf('\n')));
      assert.equal(first.kind, 'checkpoint');
      assert.equal(first.seq, segment.firstSeq);
      // Nothing overshoots by more than one record.
      assert.ok(statSync(segment.path).size <= 8 * 1024 + 1024, `${segment.name} is ${statSync(segment.path).size} bytes`);
    }
    const summary = await verifies(dir);
    assert.equal(summary.events, 150);
    assert.equal(summary.segments, segments.length);

    const reopened = await openSpool({ dir, maxSegmentBytes: 8 * 1024 });
    const seq = await reopened.append(sampleEvent(1));
    assert.equal(seq, summary.lastSeq + 2, 'seq continues after the reopening checkpoint');
    const all = await reopened.readSince(0, 10_000);
    assert.deepEqual(
      all.map((r) => r.seq),
      Array.from({ length: seq }, (_, i) => i + 1),
    );
  });

  it('writes a checkpoint after every N events', async () => {
    const dir = scratchDir();
    const spool = await openSpool({ dir, checkpointEveryEvents: 10, checkpointEverySeconds: 0 });
    for (let i = 0; i < 25; i++) await spool.append(sampleEvent(i));
    const kinds = segmentLines(dir).map((r) => r.kind);
    assert.deepEqual(
      kinds.flatMap((k, i) => (k === 'checkpoint' ? [i + 1] : [])),
      [1, 12, 23],
      'open, after 10, after 20',
    );
  });

  it('writes a checkpoint every T seconds while events arrive, and nothing while idle', async () => {
    const dir = scratchDir();
    const spool = await openSpool({ dir, checkpointEveryEvents: 1000, checkpointEverySeconds: 0.05 });
    for (let i = 0; i < 5; i++) await spool.append(sampleEvent(i));
    await new Promise((resolve) => setTimeout(resolve, 250));
    const records = segmentLines(dir);
    assert.equal(records.at(-1)!.kind, 'checkpoint', 'the timer covered the last events');
    assert.equal(records.filter((r) => r.kind === 'event').length, 5);
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(segmentLines(dir).length, records.length, 'no checkpoints while idle');
  });

  it('recovers a torn last line: truncates it, reports it, continues the chain', async () => {
    const dir = scratchDir();
    const first = await AuditSpool.open({ dir });
    for (let i = 0; i < 5; i++) await first.append(sampleEvent(i));
    await first.close();
    const segment = listSegments(dir)[0]!;
    const sizeBefore = statSync(segment.path).size;
    const torn = '{"seq":8,"prev":"00ab","kind":"event","event":{"id":"01J';
    appendFileSync(segment.path, torn);
    const summaryBefore = await verifies(dir);
    assert.equal(summaryBefore.tornTailBytes, torn.length, 'verify notes the interrupted write');

    const spool = await openSpool({ dir });
    assert.equal(spool.recovery.truncatedBytes, torn.length);
    assert.equal(spool.recovery.truncatedSegment, segment.name);
    assert.equal(spool.recovery.lastSeq, 7);
    assert.equal(spool.recovery.verifiedFromSeq, 7, 'from the close checkpoint');
    assert.ok(statSync(segment.path).size > sizeBefore);
    assert.equal(await spool.append(sampleEvent(9)), 9);
    await spool.close();
    const summary = await verifies(dir);
    assert.equal(summary.tornTailBytes, 0);
    assert.equal(summary.events, 6);
  });

  it('drops trailing NUL blocks and a segment that holds only an interrupted write', async () => {
    const dir = scratchDir();
    const first = await AuditSpool.open({ dir });
    await first.append(sampleEvent(1));
    await first.close();
    appendFileSync(listSegments(dir)[0]!.path, Buffer.alloc(4096));
    writeFileSync(join(dir, 'audit-0000000000000004.jsonl'), '{"seq":4,"pr', { mode: 0o600 });
    const spool = await openSpool({ dir });
    assert.deepEqual(spool.recovery.removedSegments, ['audit-0000000000000004.jsonl']);
    assert.equal(spool.recovery.truncatedBytes, 4096 + 12);
    assert.equal(await spool.append(sampleEvent(2)), 5);
    await spool.close();
    await verifies(dir);
  });

  it('refuses to open over a damaged record rather than bury it', async () => {
    const dir = scratchDir();
    const first = await AuditSpool.open({ dir, checkpointEveryEvents: 1000 });
    for (let i = 0; i < 5; i++) await first.append(sampleEvent(i));
    await first.close();
    const path = listSegments(dir)[0]!.path;
    const original = readFileSync(path, 'utf8');
    // Opening re-checks from the last checkpoint (here the closing one, line 7): damage there is refused.
    writeFileSync(path, original.replace(/"checkpoint":"eyJ([^\n]*\n)$/, '"checkpoint":"fyJ$1'));
    await assert.rejects(AuditSpool.open({ dir }), (error: unknown) => {
      assert.ok(error instanceof AuditSpoolDamagedError);
      assert.equal(error.segment, 'audit-0000000000000001.jsonl');
      assert.equal(error.line, 7);
      assert.equal(error.seq, 7);
      assert.match(error.message, /does not match its hash.*gatehouse audit verify/);
      return true;
    });
    // The failed open released the lock.
    assert.ok(!readdirSync(dir).includes('spool.lock'));
  });

  it("lets one process write a spool at a time and takes over a dead owner's lock", async () => {
    const dir = scratchDir();
    const spool = await openSpool({ dir });
    await assert.rejects(AuditSpool.open({ dir }), new RegExp(`in use by process ${process.pid}`));
    await spool.close();
    writeFileSync(join(dir, 'spool.lock'), '2147483646\n', { mode: 0o600 }); // no such process
    const again = await openSpool({ dir });
    assert.equal(await again.append(sampleEvent(1)), 3, 'open checkpoints 1 and 2, then the event');
  });

  it('reads after a cursor and keeps a durable shipping cursor', async () => {
    const dir = scratchDir();
    const spool = await openSpool({ dir, maxSegmentBytes: 4096 });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const event = sampleEvent(i);
      ids.push(event.id);
      await spool.append(event);
    }
    const events: string[] = [];
    let cursor = spool.shippedThrough();
    assert.equal(cursor, 0);
    for (;;) {
      const batch = await spool.readSince(cursor, 7);
      if (batch.length === 0) break;
      assert.ok(batch.length <= 7);
      for (const record of batch) {
        assert.equal(record.seq, ++cursor, 'no gaps, in order, across segments');
        assert.ok(record.line.startsWith(`{"seq":${record.seq},`));
        if (record.kind === 'event') events.push(record.event.id);
      }
      await spool.markShipped(cursor);
    }
    assert.deepEqual(events, ids);
    assert.equal(JSON.parse(readFileSync(join(dir, 'shipped.json'), 'utf8')).seq, cursor);
    await assert.rejects(spool.markShipped(cursor + 100), /spool ends at/);
    await spool.close();
    const reopened = await openSpool({ dir });
    assert.equal(reopened.shippedThrough(), cursor);
    assert.deepEqual(
      (await reopened.readSince(cursor, 10)).map((r) => r.kind),
      ['checkpoint', 'checkpoint'],
      'close and open checkpoints',
    );
  });

  it('fails closed after a write error: pending and later appends reject', async () => {
    const spool = await openSpool({ dir: scratchDir() });
    await spool.append(sampleEvent(1));
    // Pull the file out from under the writer, as a failing disk would.
    await (spool as unknown as { writer: { segment: { handle: { close(): Promise<void> } } } }).writer.segment.handle.close();
    await assert.rejects(spool.append(sampleEvent(2)), AuditSpoolFailedError);
    await assert.rejects(spool.append(sampleEvent(3)), /cannot write/);
  });

  it('digests arguments with its own installation key', async () => {
    const dir = scratchDir();
    const spool = await openSpool({ dir });
    const digest = spool.digestArguments({ repo: 'acme/secret' });
    assert.match(digest, /^[0-9a-f]{64}$/);
    await spool.close();
    const again = await openSpool({ dir });
    assert.equal(again.digestArguments({ repo: 'acme/secret' }), digest, 'the key persists');
    assert.notEqual((await openSpool({ dir: scratchDir() })).digestArguments({ repo: 'acme/secret' }), digest);
  });
});
