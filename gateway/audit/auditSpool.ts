/**
 * gateway/audit/ owns the gateway's local audit trail: every relayed MCP call becomes an
 * `AuditEvent` (common/audit) that is durable on disk before the call is answered, in a
 * spool that loses nothing acknowledged and shows any later change.
 *
 *   auditSpool.ts       `AuditSpool`: open + crash recovery, validated appends, the
 *                       shipping cursor and `readSince`
 *   auditSpoolWriter.ts group-committed appends, checkpoints in the chain, rotation
 *   auditSegment.ts     the on-disk format: segment files, record lines, the hash chain
 *   auditCheckpoint.ts  signed checkpoints: what they prove and what they do not
 *   auditKeys.ts        the checkpoint key pair and the arguments digest key (0600 files)
 *   auditVerifier.ts    full verification, and the record check recovery shares
 *   auditCommand.ts     `gatehouse audit verify <dir>`
 *   auditFiles.ts       private folder and files, atomic replace, the one-writer lock
 *
 * The spool folder (0700) holds `audit-<seq>.jsonl` segments, `checkpoint-key.json`,
 * `args-digest.key`, `shipped.json` (how far the policy server has acknowledged) and
 * `spool.lock`; every file is 0600.
 *
 * Durability: `append` resolves only after its record is written and fdatasync'ed. Appends
 * are group-committed: while one write + fdatasync runs, new appends queue; the next round
 * takes the whole queue as one write and one fdatasync. So a lone call waits one fsync, and
 * many concurrent calls share them.
 *
 * A write or sync error fails the spool for good (the page cache can no longer be trusted
 * to match the disk): every pending and later append rejects, and the gateway must stop
 * answering calls it cannot audit. Reopening recovers from what is on disk.
 */
import { open, readFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AuditEventSchema, digestArguments, type AuditEvent } from '../../common/audit/auditEvent';
import type { Logger } from '../../common/log/logger';
import { ensurePrivateDirectory, readPrivateFile, writePrivateFileAtomicAsync } from '../../common/fs/privateFiles';
import { SpoolLock } from './auditFiles';
import { loadOrCreateArgsDigestKey, loadOrCreateCheckpointKey, type CheckpointSigningKey } from './auditKeys';
import { DEFAULT_MAX_SEGMENT_BYTES, MAX_RECORD_BYTES, type AuditRecord } from './auditSegment';
import { recoverSpool, type AuditSpoolRecovery } from './auditRecovery';
import { AuditSpoolWriter } from './auditSpoolWriter';

export { AuditSpoolDamagedError, type AuditSpoolRecovery } from './auditRecovery';
export { AuditSpoolFailedError } from './auditSpoolWriter';

export const SHIPPED_CURSOR_FILE = 'shipped.json';

export interface AuditSpoolOptions {
  /** The spool folder; created 0700 if missing. */
  dir: string;
  /** A segment is closed once it reaches this size (default 16 MiB); the next write starts a new one. */
  maxSegmentBytes?: number;
  /** A checkpoint follows the batch in which this many events accumulated since the last one (default 1000). */
  checkpointEveryEvents?: number;
  /** A checkpoint is written this often while events arrive (default 60 s; 0 = never on a timer). */
  checkpointEverySeconds?: number;
  /** Most records in one write (default 8192); a longer queue is written in several rounds. */
  maxBatchRecords?: number;
  logger?: Logger;
  now?: () => number;
}

export interface AuditSpoolStats {
  /** Last durable seq and its hash: the head of the chain. */
  lastSeq: number;
  lastHash: string;
  segments: number;
  /** Since this spool was opened: */
  eventsAppended: number;
  checkpointsWritten: number;
  /** Writes, each followed by one fdatasync. */
  commits: number;
  largestCommit: number;
}

/** One record as `readSince` returns it, with its exact line so a shipper can forward what was hashed. */
export type AuditStoredRecord = AuditRecord & { line: string };

/** Below this many characters an event cannot reach half the record limit in UTF-8 (3 bytes a character at most). */
const MAX_EVENT_CHARS = Math.floor(MAX_RECORD_BYTES / 6);

export class AuditSpool {
  private readonly writer: AuditSpoolWriter;
  private readonly logger: Logger | undefined;
  private readonly now: () => number;

  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private shipped = 0;
  private cursorWrite: Promise<void> = Promise.resolve();
  private readHint: { segment: string; afterSeq: number; offset: number } | undefined;

  private constructor(
    readonly dir: string,
    private readonly lock: SpoolLock,
    private readonly signingKey: CheckpointSigningKey,
    private readonly argsDigestKey: Buffer,
    options: AuditSpoolOptions,
    private recoveryReport: AuditSpoolRecovery = {
      truncatedBytes: 0,
      removedSegments: [],
      verifiedFromSeq: 0,
      verifiedRecords: 0,
      lastSeq: 0,
    },
  ) {
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.writer = new AuditSpoolWriter(dir, signingKey, {
      maxSegmentBytes: options.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT_BYTES,
      checkpointEveryEvents: Math.max(1, options.checkpointEveryEvents ?? 1000),
      maxBatchRecords: Math.max(1, options.maxBatchRecords ?? 8192),
      logger: this.logger,
      now: this.now,
    });
  }

  /**
   * Opens (or creates) the spool: takes the lock, loads or creates the keys, recovers from a
   * crash (cuts a torn last line, re-checks the chain from the last checkpoint) and writes
   * an `open` checkpoint, so each start is visible in the trail. Throws
   * `AuditSpoolDamagedError` if a complete record fails the check: appending to a broken
   * chain would bury the evidence.
   */
  static async open(options: AuditSpoolOptions): Promise<AuditSpool> {
    ensurePrivateDirectory(options.dir);
    const lock = SpoolLock.acquire(options.dir);
    let spool: AuditSpool | undefined;
    try {
      const signingKey = await loadOrCreateCheckpointKey(options.dir, (options.now ?? Date.now)());
      spool = new AuditSpool(options.dir, lock, signingKey, loadOrCreateArgsDigestKey(options.dir), options);
      await spool.recover();
      spool.shipped = spool.readShippedCursor();
      await spool.writer.requestCheckpoint('open');
      const seconds = options.checkpointEverySeconds ?? 60;
      if (seconds > 0) {
        spool.timer = setInterval(() => {
          if (spool!.writer.eventsSinceCheckpoint > 0 || spool!.writer.pending.length > 0)
            spool!.writer.requestCheckpoint('interval').catch(() => {
              /* failure is reported by the spool */
            });
        }, seconds * 1000);
        spool.timer.unref();
      }
      const recovery = spool.recoveryReport;
      if (recovery.truncatedBytes > 0 || recovery.removedSegments.length > 0) {
        options.logger?.warn('audit spool recovered from an interrupted write', { dir: options.dir, ...recovery });
      }
      return spool;
    } catch (error) {
      if (spool?.writer.segment) await spool.writer.closeSegment();
      lock.release();
      throw error;
    }
  }

  get recovery(): AuditSpoolRecovery {
    return this.recoveryReport;
  }

  /** The public half of the checkpoint key: register it with the policy server to anchor this installation's checkpoints. */
  get checkpointPublicKey(): { kid: string; jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string } } {
    return { kid: this.signingKey.kid, jwk: this.signingKey.jwk };
  }

  /** `argsDigest` for an event, keyed with this installation's secret. */
  digestArguments(args: unknown): string {
    return digestArguments(args, this.argsDigestKey);
  }

  /**
   * Appends one event and resolves with its seq once it is on disk (written and
   * fdatasync'ed). Rejects if the event does not match the schema or the spool has failed
   * or is closed; the caller must then not answer the call as if it were audited.
   */
  append(event: AuditEvent): Promise<number> {
    if (this.writer.failure) return Promise.reject(this.writer.failure);
    if (this.closed) return Promise.reject(new Error('the audit spool is closed'));
    const parsed = AuditEventSchema.safeParse(event);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return Promise.reject(
        new TypeError(`invalid audit event: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'does not match the schema'}`),
      );
    }
    const json = JSON.stringify(parsed.data);
    // The schema bounds every field, so this only guards the line format's own limit.
    if (json.length > MAX_EVENT_CHARS && Buffer.byteLength(json) > MAX_RECORD_BYTES / 2) {
      return Promise.reject(new TypeError('invalid audit event: too large for a spool record'));
    }
    return this.writer.enqueue(json);
  }

  /** Writes a checkpoint now (after whatever is queued) and resolves when it is durable. */
  checkpoint(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the audit spool is closed'));
    return this.writer.requestCheckpoint('interval');
  }

  /** The seq of the last durable record (0 for an empty spool). */
  get durableSeq(): number {
    return this.writer.durableSeq;
  }

  /** Whether the spool failed for good (a write or sync error): nothing more can be audited until a restart. */
  get failed(): boolean {
    return this.writer.failure !== undefined;
  }

  stats(): AuditSpoolStats {
    const writer = this.writer;
    return { lastSeq: writer.durableSeq, lastHash: writer.durableHash, segments: writer.segments.length, ...writer.counters };
  }

  /**
   * Durable records with seq > `afterSeq`, in order, at most `limit` (events and the
   * checkpoints between them; a shipper sends both, so the server can check the chain).
   * Records are as written; `audit verify` is what checks them.
   */
  async readSince(afterSeq: number, limit: number): Promise<AuditStoredRecord[]> {
    const out: AuditStoredRecord[] = [];
    // The writer's segments and open segment are looked up at each step: it may rotate while we read.
    const writer = this.writer;
    if (limit <= 0 || afterSeq >= writer.durableSeq) return out;
    const durableSeq = writer.durableSeq;
    let index = 0;
    for (let i = 0; i < writer.segments.length; i++) if (writer.segments[i]!.firstSeq <= afterSeq + 1) index = i;
    for (; index < writer.segments.length && out.length < limit; index++) {
      const file = writer.segments[index]!;
      const hint = this.readHint?.segment === file.name && this.readHint.afterSeq <= afterSeq ? this.readHint.offset : 0;
      const end = writer.segment?.file.name === file.name ? writer.segment.size : undefined;
      const content = await readRange(file.path, hint, end);
      let offset = 0;
      while (offset < content.length && out.length < limit) {
        const newline = content.indexOf(0x0a, offset);
        if (newline < 0) break;
        const line = content.toString('utf8', offset, newline);
        offset = newline + 1;
        const record = JSON.parse(line) as AuditRecord;
        if (record.seq <= afterSeq) continue;
        if (record.seq > durableSeq) break;
        out.push({ ...record, line });
        this.readHint = { segment: file.name, afterSeq: record.seq, offset: hint + offset };
      }
    }
    return out;
  }

  /** The newest `limit` durable events (fewer only when the spool holds fewer), oldest first. */
  async recentEvents(limit: number): Promise<AuditEvent[]> {
    // Checkpoints sit between events (one per checkpointEveryEvents, plus one per open and timer): read a little more.
    const records = Math.ceil(limit * (1 + 2 / this.writer.checkpointEveryEvents)) + 64;
    const read = await this.readSince(Math.max(0, this.writer.durableSeq - records), records);
    return read.flatMap((record) => (record.kind === 'event' ? [record.event] : [])).slice(-limit);
  }

  /** The highest seq the policy server has acknowledged (0 when nothing was shipped). */
  shippedThrough(): number {
    return this.shipped;
  }

  /** Persists the shipping cursor (atomically, durably). It only moves forward, and never past the durable head. */
  async markShipped(seq: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError('the shipped cursor must be a non-negative integer');
    if (seq > this.writer.durableSeq) throw new RangeError(`cannot mark seq ${seq} shipped: the spool ends at ${this.writer.durableSeq}`);
    // One cursor write at a time, so a slow older write never lands after a newer one.
    const write = this.cursorWrite.then(async () => {
      if (seq <= this.shipped) return;
      await writePrivateFileAtomicAsync(
        join(this.dir, SHIPPED_CURSOR_FILE),
        JSON.stringify({ seq, time: new Date(this.now()).toISOString() }) + '\n',
      );
      this.shipped = seq;
    });
    this.cursorWrite = write.catch(() => undefined);
    return write;
  }

  /** Flushes what is queued, writes a `close` checkpoint, closes the file and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    try {
      while (this.writer.draining) await this.writer.draining;
      if (!this.writer.failure && this.writer.lastKind === 'event') await this.writer.requestCheckpoint('close');
      while (this.writer.draining) await this.writer.draining;
    } finally {
      await this.writer.closeSegment();
      this.lock.release();
    }
  }

  // -------------------------------------------------------------------------------------
  // Recovery

  /** Crash recovery (auditRecovery.ts), then the open segment to append to. */
  private async recover(): Promise<void> {
    const { report, segments, tail } = await recoverSpool(this.dir, this.signingKey);
    this.recoveryReport = report;
    await this.writer.resume(segments, tail);
  }

  private readShippedCursor(): number {
    const path = join(this.dir, SHIPPED_CURSOR_FILE);
    if (!existsSync(path)) return 0;
    try {
      const { seq } = JSON.parse(readPrivateFile(path).toString('utf8')) as { seq?: unknown };
      if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) return Math.min(seq, this.writer.durableSeq);
    } catch {
      /* damaged: ship again from the start; the server is idempotent by event id */
    }
    this.logger?.warn('audit shipping cursor unreadable; events will be shipped again from the start', { path });
    return 0;
  }
}

async function readRange(path: string, start: number, end: number | undefined): Promise<Buffer> {
  if (start === 0 && end === undefined) return readFile(path);
  const stop = end ?? statSync(path).size;
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(Math.max(0, stop - start));
    let read = 0;
    while (read < buffer.length) {
      const { bytesRead } = await handle.read(buffer, read, buffer.length - read, start + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return buffer.subarray(0, read);
  } finally {
    await handle.close();
  }
}
