/**
 * The audit spool's promise under a real crash: a child process appends events with many
 * concurrent appenders and prints each seq as soon as `append` resolves; the test SIGKILLs
 * it mid-stream (three times over the same spool), then reopens the spool and checks that
 * every acknowledged event is there with its id, the chain verifies end to end and seq
 * continues. (SIGKILL loses no page cache, so this proves acknowledgement order, recovery
 * and chain continuity; the fdatasync before acknowledging is what covers power loss.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { AuditSpool } from '../../gateway/audit/auditSpool';
import { verifyAuditSpool } from '../../gateway/audit/auditVerifier';
import { removeScratchDirs, sampleEvent, scratchDir } from '../unit/audit/auditTestEvents';

const WRITER = join(__dirname, '..', 'fixtures', 'audit-writer.ts');

/** Runs the writer until it has acknowledged at least `acks` events (plus a random few ms), then SIGKILLs it. */
function runAndKill(dir: string, acks: number, acknowledged: Map<number, string>): Promise<{ ready: string; acked: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, '48'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    let stderr = '';
    let ready = '';
    let acked = 0;
    let killing = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer made only ${acked} acks in time; stderr: ${stderr}`));
    }, 40_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!; // an incomplete last line was not fully reported: ignore it
      for (const line of lines) {
        if (line.startsWith('ready')) {
          ready = line;
          continue;
        }
        const [seq, id] = line.split(' ');
        acknowledged.set(Number(seq), id!);
        acked++;
      }
      if (acked >= acks && !killing) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 20));
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited with ${code ?? signal} before the kill; stderr: ${stderr}`));
      else resolve({ ready, acked });
    });
  });
}

describe('audit spool crash safety (real process, SIGKILL)', function () {
  this.timeout(120_000);
  after(removeScratchDirs);

  it('keeps every acknowledged event across kills mid-stream, and the chain verifies', async () => {
    const dir = scratchDir('audit-crash');
    const acknowledged = new Map<number, string>();
    for (let round = 0; round < 3; round++) {
      const highestBefore = Math.max(0, ...acknowledged.keys());
      const { ready } = await runAndKill(dir, 3000, acknowledged);
      // Each restart recovered and continued past everything acknowledged before it.
      const startedAt = Number(/^ready (\d+) /.exec(ready)?.[1]);
      assert.ok(startedAt > highestBefore, `round ${round}: ${ready}, highest acknowledged before ${highestBefore}`);
    }
    assert.ok(acknowledged.size >= 9000, `${acknowledged.size} acknowledged`);

    const spool = await AuditSpool.open({ dir });
    try {
      const onDisk = new Map<number, string>();
      let cursor = 0;
      for (;;) {
        const batch = await spool.readSince(cursor, 5000);
        if (batch.length === 0) break;
        for (const record of batch) {
          if (record.kind === 'event') onDisk.set(record.seq, record.event.id);
          cursor = record.seq;
        }
      }
      const lost = [...acknowledged].filter(([seq, id]) => onDisk.get(seq) !== id);
      assert.deepEqual(lost, [], 'every acknowledged event is on disk under its seq');
      const next = await spool.append(sampleEvent(1));
      assert.ok(next > Math.max(...acknowledged.keys()), 'seq continues past everything acknowledged');
    } finally {
      await spool.close();
    }
    const result = await verifyAuditSpool(dir);
    assert.ok(result.ok, result.ok ? '' : `${result.bad.segment}:${result.bad.line} ${result.bad.problem}`);
    assert.ok(result.summary.segments > 1, 'the run crossed segment rotations');
  });
});
