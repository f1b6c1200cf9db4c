/**
 * Write-ahead intents for audited calls, so a call's audit costs no wait in its answer's
 * path. Before a call goes upstream, its event as it would read if the gateway died then
 * (status `unknown`, the event id, who, what, the arguments' digest, the decision) is made
 * durable here, while the upstream works; the answer waits for that intent, never for the
 * outcome event, which the spool commits in its next group commit. So no call is answered
 * without something durable that says it happened: when the gateway restarts, every intent
 * whose outcome event did not reach the spool is appended to it as that `unknown` event.
 *
 * The journal (`intents.jsonl` in the spool folder, 0600, guarded by the spool's lock) is
 * one JSON line per intent, `{"afterSeq":N,"event":{...}}`: `afterSeq` is the spool's last
 * durable seq when the intent was made, so recovery reads the spool only from there. Once it
 * has grown past `COMPACT_AFTER_BYTES` it is rewritten (a new file renamed over it) with
 * only the intents still waiting for their outcome, so it stays small under any load, and
 * it starts empty at every open. Intents are group-committed like the spool: one write and
 * one fdatasync a round, however many calls queued meanwhile.
 */
import { dirname, join } from 'node:path';
import { constants as fsConstants } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { appendDurably } from '../../common/fs/appendOnlyFile';
import { fsyncDirectory } from '../../common/fs/fsyncDirectory';
import { describeError, type Logger } from '../../common/log/logger';
import type { AuditSpool } from './auditSpool';

export const INTENT_JOURNAL_FILE = 'intents.jsonl';
/** Rewritten with only the unsettled intents once this large (and at least 4x their size). */
const COMPACT_AFTER_BYTES = 256 * 1024;
/** Spool records read per step while recovery looks for outcome events. */
const RECOVERY_READ_BATCH = 4096;
const OPEN_FLAGS = fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW;

interface IntentLine {
  afterSeq: number;
  event: AuditEvent;
}

interface Queued {
  resolve: () => void;
  reject: (error: Error) => void;
}

export class IntentJournal {
  /** The line of every intent written or queued whose outcome event is not durable yet, by event id. */
  private readonly unsettled = new Map<string, string>();
  private unsettledBytes = 0;
  /** Lines to write in the next round, and who waits for them. */
  private queuedText = '';
  private waiting: Queued[] = [];
  private draining: Promise<void> | undefined;
  private size = 0;
  private failure: Error | undefined;

  private constructor(
    private readonly path: string,
    private handle: FileHandle,
    private readonly spool: AuditSpool,
    private readonly log: Logger,
  ) {}

  /**
   * Opens the journal of the spool in `dir` (already open, so its lock is held): first
   * appends to the spool an `unknown` event for each intent left without an outcome by a
   * gateway that died, then starts an empty journal.
   */
  static async open(dir: string, spool: AuditSpool, log: Logger): Promise<IntentJournal> {
    const path = join(dir, INTENT_JOURNAL_FILE);
    const handle = await open(path, OPEN_FLAGS, 0o600);
    try {
      await handle.chmod(0o600);
      fsyncDirectory(dir);
      const recovered = await recoverIntents(handle, spool, log);
      if (recovered > 0) {
        log.warn('calls answered before the gateway stopped had no outcome record; recorded with status unknown', { calls: recovered });
      }
      await handle.truncate(0);
      await handle.datasync();
      return new IntentJournal(path, handle, spool, log);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Makes `event` (the call's `unknown` form) durable; resolves once it is, rejects if it cannot be. */
  write(event: AuditEvent): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const line = JSON.stringify({ afterSeq: this.spool.durableSeq, event } satisfies IntentLine) + '\n';
    this.unsettled.set(event.id, line);
    this.unsettledBytes += line.length;
    this.queuedText += line;
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.kick();
    });
  }

  /** The call's outcome event is durable in the spool: its intent is no longer needed. */
  settle(eventId: string): void {
    const line = this.unsettled.get(eventId);
    if (line === undefined) return;
    this.unsettled.delete(eventId);
    this.unsettledBytes -= line.length;
    if (this.compactionDue()) this.kick();
  }

  async close(): Promise<void> {
    await this.draining;
    // Unsettled intents stay on disk: the next open records them as `unknown`.
    if (this.unsettled.size === 0 && !this.failure) await this.handle.truncate(0).catch(() => undefined);
    await this.handle.close().catch(() => undefined);
  }

  private compactionDue(): boolean {
    return this.size > COMPACT_AFTER_BYTES && this.size > 4 * this.unsettledBytes;
  }

  private kick(): void {
    if (this.draining || this.failure) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (!this.failure && (this.waiting.length > 0 || this.compactionDue())) this.kick();
    });
  }

  private async drain(): Promise<void> {
    // Intents made in the same tick as the first one join its commit.
    await Promise.resolve();
    while (!this.failure && (this.waiting.length > 0 || this.compactionDue())) {
      const waiting = this.waiting;
      const text = this.queuedText;
      this.waiting = [];
      this.queuedText = '';
      try {
        // The rewrite holds every unsettled intent, the ones queued in this round included.
        if (this.compactionDue()) await this.compact();
        else if (text.length > 0) {
          const bytes = Buffer.from(text, 'utf8');
          await appendDurably(this.handle, bytes);
          this.size += bytes.length;
        }
      } catch (error) {
        this.failure = new Error(`the audit intent journal cannot write (${describeError(error)})`, { cause: error });
        this.log.error('audit intent journal write failed; each audited call now waits for its outcome event instead', {
          error: describeError(error),
        });
        for (const item of [...waiting, ...this.waiting.splice(0)]) item.reject(this.failure);
        return;
      }
      for (const item of waiting) item.resolve();
    }
  }

  /** Replaces the file with one holding only the unsettled intents: written and synced aside, then renamed over it. */
  private async compact(): Promise<void> {
    const aside = `${this.path}.compact`;
    const handle = await open(aside, OPEN_FLAGS | fsConstants.O_TRUNC, 0o600);
    try {
      const bytes = Buffer.from([...this.unsettled.values()].join(''), 'utf8');
      await appendDurably(handle, bytes);
      await rename(aside, this.path);
      fsyncDirectory(dirname(this.path));
      await this.handle.close().catch(() => undefined);
      this.handle = handle;
      this.size = bytes.length;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }
}

/** Appends to the spool the `unknown` event of every intent in the journal whose outcome the spool lacks; returns how many. */
async function recoverIntents(handle: FileHandle, spool: AuditSpool, log: Logger): Promise<number> {
  const { size } = await handle.stat();
  if (size === 0) return 0;
  const text = Buffer.alloc(size);
  await handle.read(text, 0, size, 0);
  const intents: IntentLine[] = [];
  const lines = text.toString('utf8').split('\n');
  // The last piece is empty after a whole line, or an interrupted write (never acknowledged, so no call waited on it).
  lines.pop();
  for (const [index, line] of lines.entries()) {
    try {
      const parsed = JSON.parse(line) as IntentLine;
      if (typeof parsed.afterSeq !== 'number' || typeof parsed.event?.id !== 'string') throw new Error('not an intent');
      intents.push(parsed);
    } catch (error) {
      log.error('audit intent journal line unreadable; skipped', { line: index + 1, error: describeError(error) });
    }
  }
  if (intents.length === 0) return 0;
  const outcomes = new Set<string>();
  let after = Math.min(...intents.map((intent) => intent.afterSeq));
  for (;;) {
    const records = await spool.readSince(after, RECOVERY_READ_BATCH);
    if (records.length === 0) break;
    for (const record of records) if (record.kind === 'event') outcomes.add(record.event.id);
    after = records[records.length - 1]!.seq;
  }
  let recovered = 0;
  for (const intent of intents) {
    if (outcomes.has(intent.event.id)) continue;
    outcomes.add(intent.event.id); // the same intent twice is recorded once
    try {
      await spool.append(intent.event);
      recovered++;
    } catch (error) {
      if (spool.failed) throw error;
      // Not an event the spool accepts (a damaged line): said loudly, and the others still recorded.
      log.error('audit intent could not be recorded', { event: intent.event.id, error: describeError(error) });
    }
  }
  return recovered;
}
