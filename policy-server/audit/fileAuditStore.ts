/**
 * The embedded AuditStore: append-only JSONL segment files in the data dir, and an
 * in-memory index rebuilt from them at open.
 *
 * Why not lowdb, which holds policy versions and revocations: lowdb keeps the whole
 * database as one JSON document in memory and rewrites the whole file on every write. The
 * audit trail is append-heavy and grows without bound, so every batch would rewrite all of
 * history (O(trail) bytes per write) and keep every event in memory. Here a group of
 * batches costs one append and one fdatasync whatever the trail's size, and memory holds
 * only a small index entry per event.
 *
 * Layout: `<data-dir>/audit/` (0700) holds `events-<8 digits>.jsonl` (0600), one event JSON
 * per line; a new segment starts once one reaches `maxSegmentBytes` (64 MiB). `store.lock`
 * holds the owning pid: one process writes the store (replicas share the PostgreSQL store, `--store`).
 *
 * Durability: `append` resolves after its lines are written and fdatasync'ed. Appends are
 * group-committed: while one write + fdatasync runs, new batches queue, and the next round
 * writes them all at once. Ids are checked against the index within the round, so a
 * duplicate, even one of a line still being written, resolves only once that line is
 * durable. A write or sync error fails the store until restart (the page cache can no
 * longer be trusted to match the disk); gateways keep their events and retry.
 *
 * Crash recovery at open: lines are only acknowledged once synced, so an interrupted write
 * can only leave damage at the end of the last segment, which is cut (gateways resend what
 * was not acknowledged). Damage anywhere else is refused with the file and line: serving a
 * trail with a hole would hide it.
 *
 * This file is the store itself (open, group commit, recovery); the index queries run on is
 * in fileAuditIndex.ts, the segment files and reading lines back in fileAuditSegments.ts.
 */
import { readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { appendDurably, createAppendOnlyFile, openForAppend } from '../../common/fs/appendOnlyFile';
import type { ProcessLock } from '../../common/processLock';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { describeError, type Logger } from '../../common/log/logger';
import { ensurePrivateDirectory, ensurePrivateFile } from '../../common/fs/privateFiles';
import { AuditStoreUnavailableError, decodeAuditCursor, encodeAuditCursor } from './auditStore';
import type { AuditAppendResult, AuditPage, AuditQueryFilters, AuditStore } from './auditStore';
import { FileAuditIndex, type IndexEntry } from './fileAuditIndex';
import {
  AuditStoreDamagedError,
  acquireStoreLock,
  listSegmentNames,
  nextSegment,
  parseStoredLine,
  readStoredEvents,
  type AuditSegment,
} from './fileAuditSegments';

export { AuditStoreDamagedError } from './fileAuditSegments';

export const DEFAULT_AUDIT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** At most this many bytes go into one write; more queued batches wait for the next round. */
const MAX_ROUND_BYTES = 16 * 1024 * 1024;

export interface FileAuditStoreOptions {
  /** A segment is closed once it reaches this size (default 64 MiB). */
  maxSegmentBytes?: number;
  log?: Logger;
}

interface PendingAppend {
  events: AuditEvent[];
  bytes: number;
  resolve: (result: AuditAppendResult) => void;
  reject: (error: Error) => void;
}

export class FileAuditStore implements AuditStore {
  private readonly index = new FileAuditIndex();
  private segments: AuditSegment[] = [];
  private writer: { handle: FileHandle; size: number } | undefined;
  private pending: PendingAppend[] = [];
  private draining: Promise<void> | undefined;
  private failure: AuditStoreUnavailableError | undefined;
  private closed = false;
  private readonly maxSegmentBytes: number;
  private readonly log: Logger | undefined;

  private constructor(
    readonly dir: string,
    private readonly lock: ProcessLock,
    options: FileAuditStoreOptions,
  ) {
    this.maxSegmentBytes = Math.max(1, options.maxSegmentBytes ?? DEFAULT_AUDIT_SEGMENT_BYTES);
    this.log = options.log;
  }

  /** Opens (or creates) the store in `dir`: takes the lock, rebuilds the index, cuts an interrupted write. */
  static async open(dir: string, options: FileAuditStoreOptions = {}): Promise<FileAuditStore> {
    ensurePrivateDirectory(dir);
    const lock = acquireStoreLock(dir);
    const store = new FileAuditStore(dir, lock, options);
    try {
      await store.rebuild();
      options.log?.info('audit store open', { dir, events: store.index.size, segments: store.segments.length });
      return store;
    } catch (error) {
      await store.writer?.handle.close().catch(() => undefined);
      lock.release();
      throw error;
    }
  }

  append(events: AuditEvent[]): Promise<AuditAppendResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new AuditStoreUnavailableError('The audit store is closed.'));
    if (events.length === 0) return Promise.resolve({ accepted: 0, duplicates: 0 });
    return new Promise<AuditAppendResult>((resolve, reject) => {
      this.pending.push({ events, bytes: 0, resolve, reject });
      this.kick();
    });
  }

  async query(filters: AuditQueryFilters, page: { limit: number; cursor?: string }): Promise<AuditPage> {
    const limit = Math.max(1, Math.floor(page.limit));
    const after = page.cursor === undefined ? undefined : decodeAuditCursor(page.cursor);
    const matched: IndexEntry[] = [];
    this.index.scan(filters, after, (entry) => {
      matched.push(entry);
      return matched.length <= limit;
    });
    const more = matched.length > limit;
    if (more) matched.pop();
    const events = await readStoredEvents(this.segments, matched);
    const last = matched.at(-1);
    return { events, ...(more && last ? { nextCursor: encodeAuditCursor(last) } : {}) };
  }

  async count(filters: AuditQueryFilters): Promise<number> {
    let count = 0;
    this.index.scan(filters, undefined, () => {
      count++;
      return true;
    });
    return count;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      while (this.draining) await this.draining;
    } finally {
      await this.writer?.handle.close().catch(() => undefined);
      this.writer = undefined;
      this.lock.release();
    }
  }

  // -------------------------------------------------------------------------------------
  // Writing

  private kick(): void {
    if (this.draining || this.failure) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (!this.failure && this.pending.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    await Promise.resolve(); // batches sent in the same tick share the first commit
    while (!this.failure && this.pending.length > 0) {
      const round: PendingAppend[] = [];
      const results: AuditAppendResult[] = [];
      const fresh: IndexEntry[] = [];
      const resent: Array<{ entry: IndexEntry; json: string }> = [];
      try {
        if (!this.writer || this.writer.size >= this.maxSegmentBytes) await this.startSegment();
        const writer = this.writer!;
        const segment = this.segments.length - 1;
        const inRound = new Map<string, { entry: IndexEntry; json: string }>();
        const chunks: string[] = [];
        let offset = writer.size;
        while (this.pending.length > 0 && (round.length === 0 || offset - writer.size < MAX_ROUND_BYTES)) {
          const request = this.pending.shift()!;
          round.push(request);
          const result = { accepted: 0, duplicates: 0 };
          results.push(result);
          for (const event of request.events) {
            const json = JSON.stringify(event);
            const stored = this.index.get(event.id) ?? inRound.get(event.id)?.entry;
            if (stored) {
              result.duplicates++;
              const same = inRound.get(event.id);
              if (same) {
                if (same.json !== json) this.conflict(stored, event);
              } else {
                resent.push({ entry: stored, json });
              }
              continue;
            }
            const length = Buffer.byteLength(json);
            const entry = this.index.entryFor(event, segment, offset, length);
            inRound.set(event.id, { entry, json });
            fresh.push(entry);
            chunks.push(json, '\n');
            offset += length + 1;
            result.accepted++;
          }
        }
        if (chunks.length > 0) {
          const bytes = Buffer.from(chunks.join(''), 'utf8');
          await appendDurably(writer.handle, bytes);
          writer.size += bytes.length;
        }
      } catch (error) {
        this.fail(error, round);
        return;
      }
      this.index.add(fresh);
      for (let i = 0; i < round.length; i++) round[i]!.resolve(results[i]!);
      if (resent.length > 0) void this.checkResent(resent);
    }
  }

  /** A resent event differing from the stored copy is not stored (the first copy stands), but it is worth a warning. */
  private async checkResent(resent: Array<{ entry: IndexEntry; json: string }>): Promise<void> {
    try {
      const stored = await readStoredEvents(
        this.segments,
        resent.map((r) => r.entry),
      );
      resent.forEach(({ json }, i) => {
        if (JSON.stringify(stored[i]) !== json) this.conflict(resent[i]!.entry, JSON.parse(json) as AuditEvent);
      });
    } catch (error) {
      this.log?.warn('could not compare resent audit events with the stored copies', { error: describeError(error) });
    }
  }

  private conflict(stored: IndexEntry, event: AuditEvent): void {
    this.log?.warn('audit event resent with different content; the first stored copy is kept', {
      id: event.id,
      storedUser: stored.user,
      user: event.user,
    });
  }

  private async startSegment(): Promise<void> {
    const previous = this.writer;
    const { name, path } = nextSegment(this.dir, this.segments.at(-1));
    const handle = await createAppendOnlyFile(this.dir, path);
    this.segments.push({ name, path });
    this.writer = { handle, size: 0 };
    await previous?.handle.close();
  }

  private fail(error: unknown, round: PendingAppend[]): void {
    this.failure = new AuditStoreUnavailableError(
      `The central audit store cannot write (${describeError(error)}); audit batches are refused until the policy server restarts. Gateways keep their events meanwhile.`,
      { cause: error },
    );
    this.log?.error('audit store write failed; refusing further batches', { dir: this.dir, error: describeError(error) });
    for (const request of [...round, ...this.pending.splice(0)]) request.reject(this.failure);
  }

  // -------------------------------------------------------------------------------------
  // Opening

  private async rebuild(): Promise<void> {
    const names = listSegmentNames(this.dir);
    let duplicates = 0;
    for (let s = 0; s < names.length; s++) {
      const name = names[s]!;
      const path = join(this.dir, name);
      ensurePrivateFile(path);
      const isLast = s === names.length - 1;
      const content = await readFile(path);
      this.segments.push({ name, path });
      let offset = 0;
      let lineNumber = 0;
      let cutAt: { offset: number; line: number; problem: string } | undefined;
      while (offset < content.length) {
        lineNumber++;
        const newline = content.indexOf(0x0a, offset);
        const end = newline < 0 ? content.length : newline;
        const problem = newline < 0 ? 'the line is incomplete' : undefined;
        const event = problem ? undefined : parseStoredLine(content.toString('utf8', offset, end));
        if (!event) {
          // Bad lines may only be the tail of the last segment: an interrupted, unacknowledged write.
          if (!isLast) throw new AuditStoreDamagedError(this.dir, name, lineNumber, problem ?? 'the line is not a stored audit event');
          cutAt ??= { offset, line: lineNumber, problem: problem ?? 'the line is not a stored audit event' };
        } else if (cutAt) {
          throw new AuditStoreDamagedError(this.dir, name, cutAt.line, `${cutAt.problem}, and complete events follow it`);
        } else if (this.index.has(event.id)) {
          duplicates++;
        } else {
          this.index.load(this.index.entryFor(event, s, offset, end - offset));
        }
        offset = end + 1;
      }
      if (isLast) {
        const size = cutAt ? cutAt.offset : content.length;
        const handle = await openForAppend(path);
        try {
          if (cutAt) {
            await handle.truncate(size);
            await handle.sync();
            this.log?.warn(
              'audit store: cut an interrupted write from the end of the last segment (gateways resend what was not acknowledged)',
              {
                segment: name,
                line: cutAt.line,
                bytes: content.length - size,
              },
            );
          }
        } catch (error) {
          await handle.close();
          throw error;
        }
        this.writer = { handle, size };
      }
    }
    this.index.finishLoading();
    if (duplicates > 0) this.log?.warn('audit store: ignored repeated event ids while opening', { duplicates });
  }
}
