/**
 * gateway/audit/ owns the gateway's local audit trail: every relayed MCP call becomes an
 * `AuditEvent` (common/audit) that is durable on disk before the call is answered, in a
 * spool that loses nothing acknowledged and shows any later change.
 *
 *   auditSpool.ts       `AuditSpool`: open + crash recovery, group-committed appends,
 *                       checkpoints, rotation, the shipping cursor and `readSince`
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
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { existsSync, constants as fsConstants, statSync } from 'node:fs';
import { join } from 'node:path';
import { AuditEventSchema, digestArguments, type AuditEvent } from '../../common/audit/auditEvent';
import { describeError, type Logger } from '../../common/log/logger';
import { signCheckpoint, type CheckpointReason } from './auditCheckpoint';
import { ensurePrivateDirectory, fsyncDirectory, readPrivateFile, SpoolLock, writePrivateFileAtomicAsync } from './auditFiles';
import { loadOrCreateArgsDigestKey, loadOrCreateCheckpointKey, type CheckpointSigningKey } from './auditKeys';
import {
  DEFAULT_MAX_SEGMENT_BYTES,
  GENESIS_HASH,
  MAX_RECORD_BYTES,
  encodeRecord,
  segmentFileName,
  type AuditRecord,
  type SegmentFile,
} from './auditSegment';
import { recoverSpool, type AuditSpoolRecovery } from './auditRecovery';

export { AuditSpoolDamagedError, type AuditSpoolRecovery } from './auditRecovery';

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

export class AuditSpoolFailedError extends Error {
  constructor(cause: unknown) {
    super(`The audit spool cannot write (${describeError(cause)}); calls cannot be audited until the gateway restarts.`, { cause });
    this.name = 'AuditSpoolFailedError';
  }
}

interface PendingAppend {
  json: string;
  resolve: (seq: number) => void;
  reject: (error: Error) => void;
}

interface OpenSegment {
  file: SegmentFile;
  handle: FileHandle;
  /** Bytes known durable: every byte below this was fdatasync'ed. */
  size: number;
}

/** Below this many characters an event cannot reach half the record limit in UTF-8 (3 bytes a character at most). */
const MAX_EVENT_CHARS = Math.floor(MAX_RECORD_BYTES / 6);

export class AuditSpool {
  private readonly maxSegmentBytes: number;
  private readonly checkpointEveryEvents: number;
  private readonly maxBatchRecords: number;
  private readonly logger: Logger | undefined;
  private readonly now: () => number;

  private segments: SegmentFile[] = [];
  private segment: OpenSegment | undefined;
  /** Head of the chain as assigned (may run ahead of the disk while a commit is in flight). */
  private seq = 0;
  private head = GENESIS_HASH;
  /** Head of the chain on disk. */
  private durableSeq = 0;
  private durableHash = GENESIS_HASH;
  private lastKind: AuditRecord['kind'] | undefined;
  /** The next record would not fit in the current segment. */
  private segmentFull = false;
  private eventsSinceCheckpoint = 0;

  private pending: PendingAppend[] = [];
  private checkpointWanted: CheckpointReason | undefined;
  private checkpointWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private draining: Promise<void> | undefined;
  private failure: AuditSpoolFailedError | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private shipped = 0;
  private cursorWrite: Promise<void> = Promise.resolve();
  private readHint: { segment: string; afterSeq: number; offset: number } | undefined;
  private readonly counters = { eventsAppended: 0, checkpointsWritten: 0, commits: 0, largestCommit: 0 };

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
    this.maxSegmentBytes = options.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT_BYTES;
    this.checkpointEveryEvents = Math.max(1, options.checkpointEveryEvents ?? 1000);
    this.maxBatchRecords = Math.max(1, options.maxBatchRecords ?? 8192);
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
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
      await spool.requestCheckpoint('open');
      const seconds = options.checkpointEverySeconds ?? 60;
      if (seconds > 0) {
        spool.timer = setInterval(() => {
          if (spool!.eventsSinceCheckpoint > 0 || spool!.pending.length > 0)
            spool!.requestCheckpoint('interval').catch(() => {
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
      if (spool?.segment) await spool.segment.handle.close().catch(() => undefined);
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
    if (this.failure) return Promise.reject(this.failure);
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
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ json, resolve, reject });
      this.kick();
    });
  }

  /** Writes a checkpoint now (after whatever is queued) and resolves when it is durable. */
  checkpoint(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the audit spool is closed'));
    return this.requestCheckpoint('interval');
  }

  private requestCheckpoint(reason: CheckpointReason): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.checkpointWanted = reason;
      this.checkpointWaiters.push({ resolve, reject });
      this.kick();
    });
  }

  stats(): AuditSpoolStats {
    return { lastSeq: this.durableSeq, lastHash: this.durableHash, segments: this.segments.length, ...this.counters };
  }

  /**
   * Durable records with seq > `afterSeq`, in order, at most `limit` (events and the
   * checkpoints between them; a shipper sends both, so the server can check the chain).
   * Records are as written; `audit verify` is what checks them.
   */
  async readSince(afterSeq: number, limit: number): Promise<AuditStoredRecord[]> {
    const out: AuditStoredRecord[] = [];
    if (limit <= 0 || afterSeq >= this.durableSeq) return out;
    const durableSeq = this.durableSeq;
    let index = 0;
    for (let i = 0; i < this.segments.length; i++) if (this.segments[i]!.firstSeq <= afterSeq + 1) index = i;
    for (; index < this.segments.length && out.length < limit; index++) {
      const file = this.segments[index]!;
      const hint = this.readHint?.segment === file.name && this.readHint.afterSeq <= afterSeq ? this.readHint.offset : 0;
      const end = this.segment?.file.name === file.name ? this.segment.size : undefined;
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
    const records = Math.ceil(limit * (1 + 2 / this.checkpointEveryEvents)) + 64;
    const read = await this.readSince(Math.max(0, this.durableSeq - records), records);
    return read.flatMap((record) => (record.kind === 'event' ? [record.event] : [])).slice(-limit);
  }

  /** The highest seq the policy server has acknowledged (0 when nothing was shipped). */
  shippedThrough(): number {
    return this.shipped;
  }

  /** Persists the shipping cursor (atomically, durably). It only moves forward, and never past the durable head. */
  async markShipped(seq: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError('the shipped cursor must be a non-negative integer');
    if (seq > this.durableSeq) throw new RangeError(`cannot mark seq ${seq} shipped: the spool ends at ${this.durableSeq}`);
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
      while (this.draining) await this.draining;
      if (!this.failure && this.lastKind === 'event') await this.requestCheckpoint('close');
      while (this.draining) await this.draining;
    } finally {
      await this.segment?.handle.close().catch(() => undefined);
      this.segment = undefined;
      this.lock.release();
    }
  }

  // -------------------------------------------------------------------------------------
  // Writing

  private kick(): void {
    if (this.draining || this.failure) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // Work that arrived after the last round looked at the queue.
      if (!this.failure && (this.pending.length > 0 || this.checkpointWanted)) this.kick();
    });
  }

  private async drain(): Promise<void> {
    // Appends made in the same tick as the first one join its commit.
    await Promise.resolve();
    while (!this.failure && (this.pending.length > 0 || this.checkpointWanted)) {
      const batch = this.pending.length <= this.maxBatchRecords ? this.pending : this.pending.slice(0, this.maxBatchRecords);
      this.pending = batch === this.pending ? [] : this.pending.slice(batch.length);
      const waiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
      const seqs: number[] = [];
      try {
        let text = '';
        let bytes = 0;
        let checkpoints = 0;
        const rotate = !this.segment || this.segmentFull || this.segment.size >= this.maxSegmentBytes;
        if (rotate) {
          await this.startSegment();
          text += await this.checkpointLine(this.takeCheckpointWanted(waiters) ?? 'segment');
          bytes = Buffer.byteLength(text);
          checkpoints++;
        }
        for (let i = 0; i < batch.length; i++) {
          const { line, hash } = encodeRecord(this.seq + 1, this.head, 'event', batch[i]!.json);
          const lineBytes = Buffer.byteLength(line);
          // (A new segment takes at least one event, however large, so rotation always makes progress.)
          if (this.segment!.size + bytes + lineBytes > this.maxSegmentBytes && (seqs.length > 0 || !rotate)) {
            // The segment is full: this commit ends here, the rest goes first into the next segment.
            this.pending = [...batch.splice(i), ...this.pending];
            this.segmentFull = true;
            break;
          }
          this.seq++;
          this.head = hash;
          seqs.push(this.seq);
          text += line;
          bytes += lineBytes;
        }
        this.eventsSinceCheckpoint += batch.length;
        if (batch.length > 0) this.lastKind = 'event';
        const reason =
          this.takeCheckpointWanted(waiters) ?? (this.eventsSinceCheckpoint >= this.checkpointEveryEvents ? 'count' : undefined);
        if (reason && !(reason !== 'open' && this.lastKind === 'checkpoint')) {
          text += await this.checkpointLine(reason);
          checkpoints++;
        }
        if (text.length > 0) await this.commit(Buffer.from(text, 'utf8'));
        this.counters.eventsAppended += batch.length;
        this.counters.checkpointsWritten += checkpoints;
        this.counters.commits++;
        this.counters.largestCommit = Math.max(this.counters.largestCommit, batch.length + checkpoints);
      } catch (error) {
        this.fail(error, batch, waiters);
        return;
      }
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(seqs[i]!);
      for (const waiter of waiters) waiter.resolve();
    }
  }

  private takeCheckpointWanted(waiters: Array<{ resolve: () => void; reject: (error: Error) => void }>): CheckpointReason | undefined {
    const reason = this.checkpointWanted;
    if (reason) {
      this.checkpointWanted = undefined;
      waiters.push(...this.checkpointWaiters.splice(0));
    }
    return reason;
  }

  private async checkpointLine(reason: CheckpointReason): Promise<string> {
    const jws = await signCheckpoint(
      { v: 1, seq: this.seq, hash: this.head, time: new Date(this.now()).toISOString(), reason },
      this.signingKey,
    );
    const { line, hash } = encodeRecord(++this.seq, this.head, 'checkpoint', JSON.stringify(jws));
    this.head = hash;
    this.lastKind = 'checkpoint';
    this.eventsSinceCheckpoint = 0;
    return line;
  }

  private async commit(bytes: Buffer): Promise<void> {
    const segment = this.segment!;
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await segment.handle.write(bytes, written, bytes.length - written);
      written += bytesWritten;
    }
    await segment.handle.datasync();
    segment.size += bytes.length;
    this.durableSeq = this.seq;
    this.durableHash = this.head;
  }

  /** Closes the current segment (already durable) and creates the next, named after the seq it starts with. */
  private async startSegment(): Promise<void> {
    const file: SegmentFile = {
      name: segmentFileName(this.seq + 1),
      path: join(this.dir, segmentFileName(this.seq + 1)),
      firstSeq: this.seq + 1,
    };
    const handle = await open(
      file.path,
      fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
      0o600,
    );
    fsyncDirectory(this.dir);
    const previous = this.segment;
    this.segment = { file, handle, size: 0 };
    this.segmentFull = false;
    this.segments.push(file);
    await previous?.handle.close();
  }

  private fail(error: unknown, batch: PendingAppend[], waiters: Array<{ reject: (error: Error) => void }>): void {
    this.failure = new AuditSpoolFailedError(error);
    this.logger?.error('audit spool write failed; refusing further appends', { dir: this.dir, error: describeError(error) });
    const failure = this.failure;
    for (const item of [...batch, ...this.pending.splice(0)]) item.reject(failure);
    for (const waiter of [...waiters, ...this.checkpointWaiters.splice(0)]) waiter.reject(failure);
  }

  // -------------------------------------------------------------------------------------
  // Recovery

  /** Crash recovery (auditRecovery.ts), then the open segment to append to. */
  private async recover(): Promise<void> {
    const { report, segments, tail } = await recoverSpool(this.dir, this.signingKey);
    this.recoveryReport = report;
    this.segments = segments;
    if (!tail) return; // a new spool: the first write creates segment 1
    this.lastKind = tail.lastKind;
    this.eventsSinceCheckpoint = tail.eventsSinceCheckpoint;
    this.seq = this.durableSeq = tail.seq;
    this.head = this.durableHash = tail.head;
    const handle = await open(tail.segment.path, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW);
    this.segment = { file: tail.segment, handle, size: tail.size };
  }

  private readShippedCursor(): number {
    const path = join(this.dir, SHIPPED_CURSOR_FILE);
    if (!existsSync(path)) return 0;
    try {
      const { seq } = JSON.parse(readPrivateFile(path).toString('utf8')) as { seq?: unknown };
      if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) return Math.min(seq, this.durableSeq);
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
