/**
 * The spool's on-disk format, shared by the writer (`AuditSpool`), its recovery and the
 * verifier.
 *
 * Segment files `audit-<first seq, 16 digits>.jsonl`, one record per line:
 *
 *   {"seq":7,"prev":"<hex>","kind":"event","event":{...},"hash":"<hex>"}
 *   {"seq":8,"prev":"<hex>","kind":"checkpoint","checkpoint":"<compact JWS>","hash":"<hex>"}
 *
 * The chain: `hash` is SHA-256 over the line's exact bytes without its trailing `hash`
 * member (the "body": everything before `,"hash":` followed by `}`), and `prev` is the
 * previous record's `hash` (64 zeros before the first record). The body contains `seq` and
 * `prev`, so each hash commits to the whole history before it: changing any byte breaks
 * that record's hash; deleting, inserting or reordering lines breaks `seq` (+1 each line)
 * and `prev` at the first record after the change. This is equivalent to hashing the whole
 * previous line, since a line's `hash` member is a function of the rest of it; hashing
 * exact bytes (not re-serialised JSON) means a verifier needs no canonical form.
 * The chain runs across segments; each segment starts with a checkpoint.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent } from '../../common/audit/auditEvent';

export const GENESIS_HASH = '0'.repeat(64);
export const DEFAULT_MAX_SEGMENT_BYTES = 16 * 1024 * 1024;
/** A record line longer than this is damage, not a record (events are bounded well below it). */
export const MAX_RECORD_BYTES = 1024 * 1024;

const SEGMENT_NAME = /^audit-(\d{16})\.jsonl$/;
const HASH_SUFFIX_BYTES = ',"hash":"'.length + 64 + '"}'.length;
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const NEWLINE = 0x0a;

interface RecordBase {
  seq: number;
  prev: string;
  hash: string;
}
export interface AuditEventRecord extends RecordBase {
  kind: 'event';
  event: AuditEvent;
}
export interface AuditCheckpointRecord extends RecordBase {
  kind: 'checkpoint';
  /** Compact JWS (EdDSA) over the `CheckpointClaims` for record `seq - 1`. */
  checkpoint: string;
}
export type AuditRecord = AuditEventRecord | AuditCheckpointRecord;

export interface SegmentFile {
  name: string;
  path: string;
  firstSeq: number;
}

export function segmentFileName(firstSeq: number): string {
  return `audit-${String(firstSeq).padStart(16, '0')}.jsonl`;
}

/** The folder's segment files in chain order. */
export function listSegments(dir: string): SegmentFile[] {
  const segments: SegmentFile[] = [];
  for (const name of readdirSync(dir)) {
    const match = SEGMENT_NAME.exec(name);
    if (match) segments.push({ name, path: join(dir, name), firstSeq: Number(match[1]) });
  }
  return segments.sort((a, b) => a.firstSeq - b.firstSeq);
}

/**
 * Encodes one record as its line (with the newline) and returns its hash. `payloadJson` is
 * the already-serialised event or the JSON string of the checkpoint JWS.
 */
export function encodeRecord(seq: number, prev: string, kind: AuditRecord['kind'], payloadJson: string): { line: string; hash: string } {
  const head = `{"seq":${seq},"prev":"${prev}","kind":"${kind}","${kind}":${payloadJson}`;
  const hash = createHash('sha256').update(head).update('}').digest('hex');
  return { line: `${head},"hash":"${hash}"}\n`, hash };
}

export type RecordCheck = { ok: true; record: AuditRecord } | { ok: false; problem: string };

/**
 * Checks one line (without its newline) against the chain: its own hash, then that it is
 * the record expected next (`seq`, `prev`). The payload's meaning (event schema, checkpoint
 * signature) is the caller's to check.
 */
export function checkRecordLine(line: Buffer, expected: { seq: number; prev: string }): RecordCheck {
  if (line.length > MAX_RECORD_BYTES) return { ok: false, problem: `the line is ${line.length} bytes, longer than any record` };
  const text = line.toString('utf8');
  const suffix = HASH_SUFFIX.exec(text);
  if (!suffix || line.length <= HASH_SUFFIX_BYTES)
    return { ok: false, problem: 'the line does not end with a record hash: it was modified or is not a spool record' };
  const computed = createHash('sha256')
    .update(line.subarray(0, line.length - HASH_SUFFIX_BYTES))
    .update('}')
    .digest('hex');
  if (computed !== suffix[1]) return { ok: false, problem: 'its content does not match its hash: the record was modified' };
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { ok: false, problem: 'the line is not valid JSON' };
  }
  const { seq, prev, kind, hash } = parsed;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { ok: false, problem: 'it has no valid seq' };
  if (typeof prev !== 'string' || !HEX64.test(prev)) return { ok: false, problem: 'it has no valid prev hash' };
  if (hash !== computed) return { ok: false, problem: 'it carries more than one hash member' };
  if (seq !== expected.seq) {
    return {
      ok: false,
      problem:
        seq > expected.seq
          ? `seq ${seq} where ${expected.seq} was expected: ${seq - expected.seq === 1 ? `record ${expected.seq} is` : `records ${expected.seq}-${seq - 1} are`} missing or out of order`
          : `seq ${seq} where ${expected.seq} was expected: records are out of order or duplicated`,
    };
  }
  if (prev !== expected.prev)
    return {
      ok: false,
      problem: 'it does not chain to the record before it (prev differs): a record before it was removed, replaced or reordered',
    };
  if (kind === 'event') {
    if (typeof parsed.event !== 'object' || parsed.event === null) return { ok: false, problem: 'event record without an event' };
    return { ok: true, record: { seq, prev, hash, kind, event: parsed.event as AuditEvent } };
  }
  if (kind === 'checkpoint') {
    if (typeof parsed.checkpoint !== 'string') return { ok: false, problem: 'checkpoint record without a signature' };
    return { ok: true, record: { seq, prev, hash, kind, checkpoint: parsed.checkpoint } };
  }
  return { ok: false, problem: `unknown record kind ${JSON.stringify(kind)}` };
}

export interface SegmentLine {
  /** 1-based line number in the segment file. */
  number: number;
  /** Byte offset of the line's first byte. */
  offset: number;
  /** The line without its newline. */
  bytes: Buffer;
}

/**
 * Splits a segment's content into complete lines. `tail` is what follows the last complete
 * record line: an incomplete last line, plus any run of NUL bytes (some file systems leave
 * zero-filled blocks after a crash), i.e. an interrupted write, not a record.
 */
export function splitSegment(content: Buffer): { lines: SegmentLine[]; tailOffset: number } {
  const lines: SegmentLine[] = [];
  let offset = 0;
  let number = 1;
  while (offset < content.length) {
    const end = content.indexOf(NEWLINE, offset);
    if (end < 0) break;
    lines.push({ number, offset, bytes: content.subarray(offset, end) });
    offset = end + 1;
    number++;
  }
  // Trailing lines made only of NULs belong to the torn tail too.
  while (lines.length > 0 && isAllZero(lines[lines.length - 1]!.bytes)) lines.pop();
  const tailOffset = lines.length > 0 ? lines[lines.length - 1]!.offset + lines[lines.length - 1]!.bytes.length + 1 : 0;
  return { lines, tailOffset };
}

function isAllZero(bytes: Buffer): boolean {
  if (bytes.length === 0) return false;
  for (const byte of bytes) if (byte !== 0) return false;
  return true;
}
