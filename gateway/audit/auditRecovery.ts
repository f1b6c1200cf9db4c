/**
 * Crash recovery of the audit spool (auditSpool.ts), run once when it opens: a torn last
 * line (an interrupted write, never an acknowledged record) is cut, segments holding only
 * such a write are removed, and the chain is re-checked from the last checkpoint (whose
 * signature is verified) to the end. A complete record that fails the check throws
 * `AuditSpoolDamagedError`: appending to a broken chain would bury the evidence.
 */
import { open } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import { readPrivateFile } from '../../common/fs/privateFiles';
import { fsyncDirectory } from '../../common/fs/fsyncDirectory';
import type { CheckpointSigningKey } from './auditKeys';
import { listSegments, splitSegment, type AuditRecord, type SegmentFile, type SegmentLine } from './auditSegment';
import { AuditChainWalker } from './auditVerifier';

/** What opening the spool found and repaired. */
export interface AuditSpoolRecovery {
  /** Bytes cut from the end of the last segment: an interrupted write (never an acknowledged record). */
  truncatedBytes: number;
  /** The segment they were cut from. */
  truncatedSegment?: string;
  /** Segments that held nothing but an interrupted write, removed. */
  removedSegments: string[];
  /** The chain was re-checked from this seq (the last checkpoint; 0 for a new spool) to the end. */
  verifiedFromSeq: number;
  verifiedRecords: number;
  /** The last record on disk when the spool was opened (0 for a new spool). */
  lastSeq: number;
}

export class AuditSpoolDamagedError extends Error {
  constructor(
    readonly segment: string,
    readonly line: number,
    readonly seq: number,
    readonly problem: string,
    dir: string,
  ) {
    super(
      `The audit spool ${dir} is damaged at ${segment} line ${line} (seq ${seq}): ${problem}. ` +
        `Run \`gatehouse audit verify ${dir}\` for details; to start a new trail, move the folder aside (keep it as evidence).`,
    );
    this.name = 'AuditSpoolDamagedError';
  }
}

const CHECKPOINT_PREFIX = /^\{"seq":(\d+),"prev":"([0-9a-f]{64})","kind":"checkpoint",/;

/** Where appending goes on: the last segment, its size, and the chain's state at its end. */
export interface RecoveredTail {
  segment: SegmentFile;
  size: number;
  seq: number;
  head: string;
  lastKind: AuditRecord['kind'] | undefined;
  eventsSinceCheckpoint: number;
}

export async function recoverSpool(
  dir: string,
  signingKey: CheckpointSigningKey,
): Promise<{ report: AuditSpoolRecovery; segments: SegmentFile[]; tail?: RecoveredTail }> {
  const report: AuditSpoolRecovery = { truncatedBytes: 0, removedSegments: [], verifiedFromSeq: 0, verifiedRecords: 0, lastSeq: 0 };
  const segments = listSegments(dir);
  let content: Buffer | undefined;
  let lines: SegmentLine[] = [];
  while (segments.length > 0) {
    const last = segments[segments.length - 1]!;
    content = readPrivateFile(last.path);
    const split = splitSegment(content);
    if (split.tailOffset < content.length) {
      // An interrupted write: it was never acknowledged (acknowledged records are whole, synced lines).
      const handle = await open(last.path, 'r+');
      try {
        await handle.truncate(split.tailOffset);
        await handle.sync();
      } finally {
        await handle.close();
      }
      report.truncatedBytes += content.length - split.tailOffset;
      report.truncatedSegment = last.name;
      content = content.subarray(0, split.tailOffset);
    }
    if (split.lines.length > 0) {
      lines = split.lines;
      break;
    }
    unlinkSync(last.path);
    fsyncDirectory(dir);
    report.removedSegments.push(last.name);
    segments.pop();
    content = undefined;
  }
  const last = segments[segments.length - 1];
  if (!last || !content) return { report, segments };

  // Trust the history up to the last checkpoint (its signature is checked below), re-check what follows.
  let from = lines.length - 1;
  while (from > 0 && !CHECKPOINT_PREFIX.test(lines[from]!.bytes.toString('latin1', 0, 160))) from--;
  const start = CHECKPOINT_PREFIX.exec(lines[from]!.bytes.toString('latin1', 0, 160));
  if (!start) {
    throw new AuditSpoolDamagedError(last.name, lines[0]!.number, last.firstSeq, 'the segment does not start with a checkpoint', dir);
  }
  const walker = new AuditChainWalker(signingKey, { seq: Number(start[1]), prev: start[2]! });
  report.verifiedFromSeq = Number(start[1]);
  let lastKind: AuditRecord['kind'] | undefined;
  let eventsSinceCheckpoint = 0;
  for (const line of lines.slice(from)) {
    const seq = walker.expected.seq;
    const checked = await walker.check(line.bytes);
    if (!checked.ok) throw new AuditSpoolDamagedError(last.name, line.number, seq, checked.problem, dir);
    report.verifiedRecords++;
    lastKind = checked.record.kind;
    eventsSinceCheckpoint = checked.record.kind === 'event' ? eventsSinceCheckpoint + 1 : 0;
  }
  report.lastSeq = walker.expected.seq - 1;
  return {
    report,
    segments,
    tail: { segment: last, size: content.length, seq: report.lastSeq, head: walker.expected.prev, lastKind, eventsSinceCheckpoint },
  };
}
