import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { runAuditCommand } from '../../../gateway/cli/auditCommand';
import { signCheckpoint, type CheckpointClaims } from '../../../gateway/audit/auditCheckpoint';
import { CHECKPOINT_KEY_FILE, loadOrCreateCheckpointKey, type CheckpointSigningKey } from '../../../gateway/audit/auditKeys';
import { AuditSpool } from '../../../gateway/audit/auditSpool';
import { GENESIS_HASH, encodeRecord, listSegments } from '../../../gateway/audit/auditSegment';
import { verifyAuditSpool, type AuditVerifyResult } from '../../../gateway/audit/auditVerifier';
import { removeScratchDirs, sampleEvent, scratchDir } from './auditTestEvents';

/** A closed spool: line 1 = open checkpoint, events on lines 2-21 with a checkpoint after every 10 (line 12), closing checkpoint line 23. */
async function writtenSpool(options: { maxSegmentBytes?: number; events?: number } = {}): Promise<{ dir: string; path: string }> {
  const dir = scratchDir();
  const spool = await AuditSpool.open({ dir, checkpointEveryEvents: 10, ...options });
  for (let i = 0; i < (options.events ?? 20); i++) await spool.append(sampleEvent(i));
  await spool.close();
  return { dir, path: listSegments(dir)[0]!.path };
}

function readLines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').slice(0, -1);
}

function writeLines(path: string, lines: string[]): void {
  writeFileSync(path, lines.map((line) => `${line}\n`).join(''));
}

function failure(result: AuditVerifyResult) {
  assert.equal(result.ok, false, 'verification should fail');
  if (result.ok) throw new Error('unreachable');
  return result.bad;
}

/**
 * What an attacker does to hide an edit: recompute every hash and link from line `from` on.
 * Checkpoints keep their signature unless `resign` is given.
 */
async function rechain(lines: string[], from: number, resign?: CheckpointSigningKey): Promise<string[]> {
  const out = lines.slice(0, from);
  let prev = from === 0 ? GENESIS_HASH : (JSON.parse(out[from - 1]!) as { hash: string }).hash;
  for (const line of lines.slice(from)) {
    const record = JSON.parse(line) as { seq: number; kind: 'event' | 'checkpoint'; event?: unknown; checkpoint?: string };
    let payload = record.kind === 'event' ? JSON.stringify(record.event) : JSON.stringify(record.checkpoint);
    if (record.kind === 'checkpoint' && resign) {
      const claims = JSON.parse(Buffer.from(record.checkpoint!.split('.')[1]!, 'base64url').toString()) as CheckpointClaims;
      payload = JSON.stringify(await signCheckpoint({ ...claims, seq: record.seq - 1, hash: prev }, resign));
    }
    const encoded = encodeRecord(record.seq, prev, record.kind, payload);
    out.push(encoded.line.slice(0, -1));
    prev = encoded.hash;
  }
  return out;
}

/** Another installation's checkpoint key, and the folder holding its key file. */
async function strangerKey(): Promise<CheckpointSigningKey & { dir: string }> {
  const dir = scratchDir('stranger').replace(/spool$/, '');
  return { ...(await loadOrCreateCheckpointKey(dir)), dir };
}

describe('audit verify', () => {
  after(removeScratchDirs);
  it('passes an untouched spool and summarises it', async () => {
    const { dir } = await writtenSpool();
    const result = await verifyAuditSpool(dir);
    assert.ok(result.ok);
    assert.deepEqual(
      {
        events: result.summary.events,
        checkpoints: result.summary.checkpoints,
        lastSeq: result.summary.lastSeq,
        segments: result.summary.segments,
      },
      { events: 20, checkpoints: 3, lastSeq: 23, segments: 1 },
    );
  });

  it('fails at the exact record where one byte changed', async () => {
    const { dir, path } = await writtenSpool();
    const original = readFileSync(path);
    const lines = readLines(path);
    for (const [lineNumber, column] of [
      [5, 40],
      [5, lines[4]!.length - 10],
      [15, 3],
      [12, 200],
      [23, 100],
    ] as const) {
      const bytes = Buffer.from(original);
      const offset = lines.slice(0, lineNumber - 1).reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0) + column;
      bytes[offset] = bytes[offset] === 0x41 ? 0x42 : 0x41;
      writeFileSync(path, bytes);
      const bad = failure(await verifyAuditSpool(dir));
      assert.deepEqual(
        { segment: bad.segment, line: bad.line, seq: bad.seq },
        { segment: 'audit-0000000000000001.jsonl', line: lineNumber, seq: lineNumber },
        `byte ${column} of line ${lineNumber}: ${bad.problem}`,
      );
      assert.match(bad.problem, /modified|does not end with a record hash|not valid JSON/);
    }
  });

  it('fails where a line was deleted', async () => {
    const { dir, path } = await writtenSpool();
    const lines = readLines(path);
    writeLines(path, [...lines.slice(0, 6), ...lines.slice(7)]);
    const bad = failure(await verifyAuditSpool(dir));
    assert.deepEqual({ line: bad.line, seq: bad.seq }, { line: 7, seq: 7 });
    assert.match(bad.problem, /seq 8 where 7 was expected: record 7 is missing/);
  });

  it('fails where lines were reordered', async () => {
    const { dir, path } = await writtenSpool();
    const lines = readLines(path);
    [lines[8], lines[9]] = [lines[9]!, lines[8]!];
    writeLines(path, lines);
    const bad = failure(await verifyAuditSpool(dir));
    assert.deepEqual({ line: bad.line, seq: bad.seq }, { line: 9, seq: 9 });
    assert.match(bad.problem, /out of order/);
  });

  it('fails where a whole segment was deleted', async () => {
    const { dir } = await writtenSpool({ maxSegmentBytes: 4096, events: 60 });
    const segments = listSegments(dir);
    assert.ok(segments.length >= 4);
    rmSync(segments[1]!.path);
    const bad = failure(await verifyAuditSpool(dir));
    assert.equal(bad.segment, segments[2]!.name);
    assert.equal(bad.line, 1);
    assert.match(bad.problem, /missing/);
  });

  it('catches history rewritten without the key at the next checkpoint', async () => {
    const { dir, path } = await writtenSpool();
    const lines = readLines(path);
    lines[3] = lines[3]!.replace('"decision":"allow"', '"decision":"deny"');
    assert.match(lines[3]!, /"deny"/);
    writeLines(path, await rechain(lines, 3));
    const bad = failure(await verifyAuditSpool(dir));
    assert.deepEqual({ line: bad.line, seq: bad.seq }, { line: 12, seq: 12 });
    assert.match(bad.problem, /checkpoint signs head seq 11 .* history before it was rewritten/);
  });

  it("checks checkpoint signatures: a stranger's key, or a forged signature under the spool's kid, fails", async () => {
    const { dir, path } = await writtenSpool();
    const lines = readLines(path);
    const stranger = await strangerKey();
    writeLines(path, await rechain(lines, 4, stranger));
    let bad = failure(await verifyAuditSpool(dir));
    assert.equal(bad.line, 12);
    assert.match(bad.problem, /signed by key .*, not by the spool's key/);

    const own = await loadOrCreateCheckpointKey(dir);
    writeLines(path, await rechain(lines, 4, { ...stranger, kid: own.kid }));
    bad = failure(await verifyAuditSpool(dir));
    assert.equal(bad.line, 12);
    assert.match(bad.problem, /signature does not verify/);
  });

  it("cannot catch a rewrite re-signed with the spool's own key (the documented limit), unless the key is pinned", async () => {
    const { dir, path } = await writtenSpool();
    const pinned = join(dir, '..', 'pinned.jwk.json');
    writeFileSync(pinned, JSON.stringify((await loadOrCreateCheckpointKey(dir)).jwk));
    const lines = readLines(path);
    lines[3] = lines[3]!.replace('"decision":"allow"', '"decision":"deny"');
    assert.match(lines[3]!, /"deny"/);

    // An attacker holding the key file re-signs: locally indistinguishable.
    writeLines(path, await rechain(lines, 3, await loadOrCreateCheckpointKey(dir)));
    assert.ok((await verifyAuditSpool(dir)).ok);

    // One who replaces the key with their own passes the spool's key file, not a pinned key.
    const stranger = await strangerKey();
    writeLines(path, await rechain(lines, 0, stranger));
    writeFileSync(join(dir, CHECKPOINT_KEY_FILE), readFileSync(join(stranger.dir, CHECKPOINT_KEY_FILE)));
    assert.ok((await verifyAuditSpool(dir)).ok);
    const bad = failure(await verifyAuditSpool(dir, { publicKeyFile: pinned }));
    assert.equal(bad.line, 1);
    assert.match(bad.problem, /not by the spool's key/);
  });

  it('notes a torn tail on the last segment, but not in the middle of the chain', async () => {
    const { dir } = await writtenSpool({ maxSegmentBytes: 4096, events: 30 });
    const segments = listSegments(dir);
    writeFileSync(segments.at(-1)!.path, readFileSync(segments.at(-1)!.path, 'utf8') + '{"seq":99,"pr');
    const result = await verifyAuditSpool(dir);
    assert.ok(result.ok);
    assert.equal(result.summary.tornTailBytes, 13);
    writeFileSync(segments[0]!.path, readFileSync(segments[0]!.path, 'utf8') + '{"seq":99,"pr');
    const bad = failure(await verifyAuditSpool(dir));
    assert.equal(bad.segment, segments[0]!.name);
    assert.match(bad.problem, /incomplete record in the middle/);
  });

  describe('gatehouse audit verify', () => {
    const run = async (argv: string[]) => {
      let out = '';
      let err = '';
      const code = await runAuditCommand(argv, {
        out: (text) => {
          out += text;
        },
        err: (text) => {
          err += text;
        },
      });
      return { code, out, err };
    };

    it('prints a summary and exits 0 on a good spool', async () => {
      const { dir } = await writtenSpool();
      const { code, out } = await run(['verify', dir]);
      assert.equal(code, 0);
      assert.match(out, /: OK\n/);
      assert.match(out, /events\s+20\n/);
      assert.match(out, /segments\s+1\n/);
      assert.match(out, /last seq\s+23 /);
      assert.match(out, /last checkpoint\s+seq 23 at .* \(count\)/);
      const json = await run(['verify', dir, '--json']);
      assert.equal(JSON.parse(json.out).summary.events, 20);
    });

    it('names the first bad record and exits 1', async () => {
      const { dir, path } = await writtenSpool();
      writeFileSync(path, readFileSync(path, 'utf8').replace('"latencyMs":12.5', '"latencyMs":1.25'));
      const { code, err } = await run(['verify', dir]);
      assert.equal(code, 1);
      assert.match(err, /FAILED/);
      assert.match(err, /first bad record\s+audit-0000000000000001\.jsonl line 2 \(seq 2\)/);
      assert.match(err, /problem\s+its content does not match its hash/);
    });

    it('explains usage errors and missing spools', async () => {
      assert.equal((await run([])).code, 2);
      assert.equal((await run(['verify'])).code, 2);
      assert.equal((await run(['frobnicate'])).code, 2);
      // An empty key file name must not quietly verify against the spool's own key.
      const emptyKey = await run(['verify', scratchDir(), '--public-key=']);
      assert.equal(emptyKey.code, 2);
      assert.match(emptyKey.err, /--public-key needs a value/);
      const missing = await run(['verify', scratchDir()]);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /cannot verify/);
    });

    it('accepts a pinned public key', async () => {
      const { dir } = await writtenSpool();
      const pinned = join(dir, '..', 'key.json');
      writeFileSync(pinned, JSON.stringify((await loadOrCreateCheckpointKey(dir)).jwk));
      assert.equal((await run(['verify', dir, '--public-key', pinned])).code, 0);
      const { publicKey } = await generateKeyPair('EdDSA', { extractable: true });
      writeFileSync(pinned, JSON.stringify(await exportJWK(publicKey)));
      assert.equal((await run(['verify', dir, '--public-key', pinned])).code, 1);
    });
  });
});
