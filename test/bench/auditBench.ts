/**
 * Audit benchmark: what durable auditing costs a call, on this machine's disk.
 *
 *  - fsync_ms_p50 / _p99: raw cost of one 512-byte append + fdatasync on the bench folder's
 *    file system (the floor under every durable append).
 *  - audit_append_p50_ms / _p99 at concurrency 1 and 32: time from `append()` to its
 *    resolution (written and fdatasync'ed), i.e. what a call waits for its audit record.
 *    The unsuffixed names are concurrency 1.
 *  - audit_events_s: durable events per second with 64 appenders in closed loops (each
 *    appends its next event as soon as the last one is durable); group commit shares each
 *    fdatasync among everything queued behind it. Target: >= 20,000.
 *
 * Events are realistic (about 450 bytes; argsDigest computed per event, outside the timed
 * part), validated against the schema and hash-chained as in production, with the default
 * 16 MiB segments and a checkpoint every 1000 events. Runs in ~15 s.
 *
 * `node --import tsx test/bench/auditBench.ts` prints a table and one JSON line
 * (`{"bench":"audit",...}`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuditEventId, type AuditEvent } from '../../common/audit/auditEvent';
import { AuditSpool } from '../../gateway/audit/auditSpool';
import { markdownTable, percentile, round } from './benchStats';

const TARGET_EVENTS_S = 20_000;
const FSYNC_SAMPLES = 400;

function benchEvent(spool: AuditSpool, i: number): AuditEvent {
  return {
    id: createAuditEventId(),
    time: new Date().toISOString(),
    user: 'alice@example.com',
    client: { name: 'Visual Studio Code', version: '1.117.0' },
    server: `server-${i % 8}`,
    method: 'tools/call',
    tool: i % 4 === 0 ? 'create_issue' : 'search_issues',
    decision: i % 4 === 0 ? 'confirm-approved' : 'allow',
    rule: `rule-${i % 40}`,
    ...(i % 4 === 0 ? { reviewer: 'alice@example.com' } : {}),
    argsDigest: spool.digestArguments({ repo: 'acme/widgets', query: `is:open label:bug ${i}`, limit: 20 }),
    status: 'ok',
    redactions: i % 16 === 0 ? { 'github-token': 1 } : {},
    flags: [],
    latencyMs: 20 + (i % 30),
  };
}

async function rawFsync(dir: string): Promise<number[]> {
  const handle = await open(join(dir, 'fsync-probe'), 'a', 0o600);
  const block = Buffer.alloc(512, 0x61);
  const samples: number[] = [];
  try {
    for (let i = 0; i < FSYNC_SAMPLES; i++) {
      await handle.write(block);
      const started = performance.now();
      await handle.datasync();
      samples.push(performance.now() - started);
    }
  } finally {
    await handle.close();
  }
  return samples.sort((a, b) => a - b);
}

interface LoadResult {
  events: number;
  seconds: number;
  latencies: Float64Array;
  commits: number;
}

/** `concurrency` appenders in closed loops for `seconds`; every append is timed. */
async function load(spool: AuditSpool, concurrency: number, seconds: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const commitsBefore = spool.stats().commits;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const event = benchEvent(spool, n++);
        const t0 = performance.now();
        await spool.append(event);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return {
    events: latencies.length,
    seconds: elapsed,
    latencies: Float64Array.from(latencies).sort(),
    commits: spool.stats().commits - commitsBefore,
  };
}

export async function runAuditBench(): Promise<Record<string, number>> {
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-audit-bench-'));
  try {
    const fsync = await rawFsync(root);
    const spool = await AuditSpool.open({ dir: join(root, 'spool') });
    try {
      await load(spool, 8, 0.5); // warm-up: JIT, page cache, first segment
      const c1 = await load(spool, 1, 2);
      const c32 = await load(spool, 32, 3);
      const c64 = await load(spool, 64, 4);
      return {
        audit_events_s: Math.round(c64.events / c64.seconds),
        audit_events_per_commit_c64: round(c64.events / Math.max(1, c64.commits), 1),
        audit_append_p50_ms: round(percentile(c1.latencies, 0.5)),
        audit_append_p99_ms: round(percentile(c1.latencies, 0.99)),
        audit_append_p50_ms_c1: round(percentile(c1.latencies, 0.5)),
        audit_append_p99_ms_c1: round(percentile(c1.latencies, 0.99)),
        audit_append_p50_ms_c32: round(percentile(c32.latencies, 0.5)),
        audit_append_p99_ms_c32: round(percentile(c32.latencies, 0.99)),
        audit_events_s_c1: Math.round(c1.events / c1.seconds),
        audit_events_s_c32: Math.round(c32.events / c32.seconds),
        fsync_ms_p50: round(percentile(fsync, 0.5)),
        fsync_ms_p99: round(percentile(fsync, 0.99)),
      };
    } finally {
      await spool.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const began = performance.now();
  runAuditBench().then(
    (r) => {
      console.log(
        markdownTable(
          ['measure', 'concurrency 1', 'concurrency 32', 'concurrency 64'],
          [
            ['durable events/s', r.audit_events_s_c1!, r.audit_events_s_c32!, r.audit_events_s!],
            ['append p50 ms', r.audit_append_p50_ms_c1!, r.audit_append_p50_ms_c32!, '-'],
            ['append p99 ms', r.audit_append_p99_ms_c1!, r.audit_append_p99_ms_c32!, '-'],
            ['events per fsync', '-', '-', r.audit_events_per_commit_c64!],
          ],
        ),
      );
      console.log(
        `raw fdatasync: p50 ${r.fsync_ms_p50} ms, p99 ${r.fsync_ms_p99} ms; target >= ${TARGET_EVENTS_S} durable events/s: ${r.audit_events_s! >= TARGET_EVENTS_S ? 'met' : 'MISSED'}`,
      );
      console.log(
        JSON.stringify({
          bench: 'audit',
          ...r,
          target_events_s: TARGET_EVENTS_S,
          targets_met: r.audit_events_s! >= TARGET_EVENTS_S,
          bench_seconds: round((performance.now() - began) / 1000, 1),
        }),
      );
    },
    (error: unknown) => {
      process.stderr.write(`audit bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
