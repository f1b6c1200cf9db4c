/**
 * The audit spool's write path: the append queue, group commit (one write + one fdatasync
 * a round, however many appends queued meanwhile), segment rotation, and the checkpoint
 * lines the chain carries (at open, close, rotation, every N events, on the timer). It owns
 * the head of the chain, as assigned and as durable; a write or sync error fails it for
 * good. `AuditSpool` (auditSpool.ts) validates what comes in and reads what is durable.
 */
import { join } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { appendDurably, createAppendOnlyFile, openForAppend } from '../../common/fs/appendOnlyFile';
import { describeError, type Logger } from '../../common/log/logger';
import { signCheckpoint, type CheckpointReason } from './auditCheckpoint';
import type { CheckpointSigningKey } from './auditKeys';
import type { RecoveredTail } from './auditRecovery';
import { GENESIS_HASH, encodeRecord, segmentFileName, type AuditRecord, type SegmentFile } from './auditSegment';

export class AuditSpoolFailedError extends Error {
  constructor(cause: unknown) {
    super(`The audit spool cannot write (${describeError(cause)}); calls cannot be audited until the gateway restarts.`, { cause });
    this.name = 'AuditSpoolFailedError';
  }
}

export interface AuditSpoolWriterOptions {
  maxSegmentBytes: number;
  checkpointEveryEvents: number;
  maxBatchRecords: number;
  logger: Logger | undefined;
  now: () => number;
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

type CheckpointWaiter = { resolve: () => void; reject: (error: Error) => void };

export class AuditSpoolWriter {
  private readonly maxSegmentBytes: number;
  readonly checkpointEveryEvents: number;
  private readonly maxBatchRecords: number;
  private readonly logger: Logger | undefined;
  private readonly now: () => number;

  /** Read by the spool (readSince, stats); only the writer changes them. */
  segments: SegmentFile[] = [];
  segment: OpenSegment | undefined;
  /** Head of the chain as assigned (may run ahead of the disk while a commit is in flight). */
  private seq = 0;
  private head = GENESIS_HASH;
  /** Head of the chain on disk. */
  durableSeq = 0;
  durableHash = GENESIS_HASH;
  lastKind: AuditRecord['kind'] | undefined;
  /** The next record would not fit in the current segment. */
  private segmentFull = false;
  eventsSinceCheckpoint = 0;

  pending: PendingAppend[] = [];
  private checkpointWanted: CheckpointReason | undefined;
  private checkpointWaiters: CheckpointWaiter[] = [];
  draining: Promise<void> | undefined;
  failure: AuditSpoolFailedError | undefined;
  readonly counters = { eventsAppended: 0, checkpointsWritten: 0, commits: 0, largestCommit: 0 };

  constructor(
    private readonly dir: string,
    private readonly signingKey: CheckpointSigningKey,
    options: AuditSpoolWriterOptions,
  ) {
    this.maxSegmentBytes = options.maxSegmentBytes;
    this.checkpointEveryEvents = options.checkpointEveryEvents;
    this.maxBatchRecords = options.maxBatchRecords;
    this.logger = options.logger;
    this.now = options.now;
  }

  /** Takes over after crash recovery: the segments on disk and, unless the spool is new, the open segment to append to. */
  async resume(segments: SegmentFile[], tail: RecoveredTail | undefined): Promise<void> {
    this.segments = segments;
    if (!tail) return; // a new spool: the first write creates segment 1
    this.lastKind = tail.lastKind;
    this.eventsSinceCheckpoint = tail.eventsSinceCheckpoint;
    this.seq = this.durableSeq = tail.seq;
    this.head = this.durableHash = tail.head;
    const handle = await openForAppend(tail.segment.path);
    this.segment = { file: tail.segment, handle, size: tail.size };
  }

  /** Queues one validated event line; resolves with its seq once durable. */
  enqueue(json: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ json, resolve, reject });
      this.kick();
    });
  }

  requestCheckpoint(reason: CheckpointReason): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.checkpointWanted = reason;
      this.checkpointWaiters.push({ resolve, reject });
      this.kick();
    });
  }

  /** Closes the open segment's file (what was acknowledged is already durable). */
  async closeSegment(): Promise<void> {
    await this.segment?.handle.close().catch(() => undefined);
    this.segment = undefined;
  }

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
      const waiters: CheckpointWaiter[] = [];
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

  private takeCheckpointWanted(waiters: CheckpointWaiter[]): CheckpointReason | undefined {
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
    await appendDurably(segment.handle, bytes);
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
    const handle = await createAppendOnlyFile(this.dir, file.path);
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
}
