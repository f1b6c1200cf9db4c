/**
 * Checks a spool end to end (`gatehouse audit verify <dir>`): every segment in order, every
 * record's hash and link, every event against the schema, every checkpoint's signature and
 * the head it claims. Reads only; stops at the first bad record and says where it is.
 * `AuditChainWalker` is the record-by-record check, shared with the spool's crash recovery.
 */
import { readFileSync } from 'node:fs';
import { AuditEventSchema } from '../../common/audit/auditEvent';
import { verifyCheckpoint, type CheckpointClaims } from './auditCheckpoint';
import { loadCheckpointPublicKey, type CheckpointPublicKey } from './auditKeys';
import { GENESIS_HASH, checkRecordLine, listSegments, splitSegment, type AuditRecord } from './auditSegment';

export type WalkResult = { ok: true; record: AuditRecord; claims?: CheckpointClaims } | { ok: false; problem: string };

/** Checks records one after another, starting from the head `expected` (the record before the first one given). */
export class AuditChainWalker {
  constructor(
    private readonly key: CheckpointPublicKey,
    public expected: { seq: number; prev: string },
  ) {}

  async check(line: Buffer): Promise<WalkResult> {
    const checked = checkRecordLine(line, this.expected);
    if (!checked.ok) return checked;
    const { record } = checked;
    let claims: CheckpointClaims | undefined;
    if (record.kind === 'event') {
      const parsed = AuditEventSchema.safeParse(record.event);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return {
          ok: false,
          problem: `the event does not match the audit event schema (${issue ? `${issue.path.join('.') || 'event'}: ${issue.message}` : 'invalid'})`,
        };
      }
    } else {
      const verified = await verifyCheckpoint(record.checkpoint, this.key);
      if (!verified.ok) return verified;
      claims = verified.claims;
      if (claims.seq !== record.seq - 1 || claims.hash !== record.prev) {
        return {
          ok: false,
          problem: `the checkpoint signs head seq ${claims.seq} hash ${claims.hash.slice(0, 12)}…, but the chain before it ends at seq ${record.seq - 1} hash ${record.prev.slice(0, 12)}…: the history before it was rewritten`,
        };
      }
    }
    this.expected = { seq: record.seq + 1, prev: record.hash };
    return claims ? { ok: true, record, claims } : { ok: true, record };
  }
}

export interface AuditBadRecord {
  /** Segment file name. */
  segment: string;
  /** 1-based line number in that file. */
  line: number;
  /** The seq the record should have had. */
  seq: number;
  problem: string;
}

export interface AuditVerifySummary {
  segments: number;
  records: number;
  events: number;
  checkpoints: number;
  lastSeq: number;
  lastHash: string;
  lastCheckpoint?: { seq: number; time: string; reason: string };
  /** Kid of the key checkpoints were checked with. */
  keyId: string;
  /** Bytes after the last record of the last segment: an interrupted write the spool truncates when it next opens. */
  tornTailBytes: number;
}

export type AuditVerifyResult = { ok: true; summary: AuditVerifySummary } | { ok: false; bad: AuditBadRecord; summary: AuditVerifySummary };

export async function verifyAuditSpool(dir: string, options: { publicKeyFile?: string } = {}): Promise<AuditVerifyResult> {
  const segments = listSegments(dir);
  if (segments.length === 0) throw new Error(`${dir} holds no audit segments (audit-<seq>.jsonl); is it a Gatehouse audit spool?`);
  const key = await loadCheckpointPublicKey(dir, options.publicKeyFile);
  const walker = new AuditChainWalker(key, { seq: 1, prev: GENESIS_HASH });
  const summary: AuditVerifySummary = {
    segments: segments.length,
    records: 0,
    events: 0,
    checkpoints: 0,
    lastSeq: 0,
    lastHash: GENESIS_HASH,
    keyId: key.kid,
    tornTailBytes: 0,
  };
  const fail = (segment: string, line: number, problem: string): AuditVerifyResult => ({
    ok: false,
    bad: { segment, line, seq: walker.expected.seq, problem },
    summary,
  });

  for (const [index, segment] of segments.entries()) {
    const isLast = index === segments.length - 1;
    if (segment.firstSeq !== walker.expected.seq) {
      return fail(
        segment.name,
        1,
        segment.firstSeq > walker.expected.seq
          ? `the segment starts at seq ${segment.firstSeq} but the chain continues at ${walker.expected.seq}: records ${walker.expected.seq}-${segment.firstSeq - 1} (a segment?) are missing`
          : `the segment starts at seq ${segment.firstSeq}, which an earlier segment already holds`,
      );
    }
    const content = readFileSync(segment.path);
    const { lines, tailOffset } = splitSegment(content);
    if (lines.length === 0 && !isLast) return fail(segment.name, 1, 'the segment is empty but is not the last one');
    for (const [position, line] of lines.entries()) {
      const checked = await walker.check(line.bytes);
      if (!checked.ok) return fail(segment.name, line.number, checked.problem);
      if (position === 0 && checked.record.kind !== 'checkpoint')
        return fail(segment.name, line.number, 'the segment does not start with a checkpoint');
      summary.records++;
      summary.lastSeq = checked.record.seq;
      summary.lastHash = checked.record.hash;
      if (checked.claims) {
        summary.checkpoints++;
        summary.lastCheckpoint = { seq: checked.record.seq, time: checked.claims.time, reason: checked.claims.reason };
      } else {
        summary.events++;
      }
    }
    if (tailOffset < content.length) {
      if (!isLast)
        return fail(
          segment.name,
          lines.length + 1,
          'an incomplete record in the middle of the chain (only the last segment may end with an interrupted write)',
        );
      summary.tornTailBytes = content.length - tailOffset;
    }
  }
  return { ok: true, summary };
}
