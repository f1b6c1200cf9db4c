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
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDirectory, ProcessLock } from '../../common/processLock';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { describeError, type Logger } from '../../common/log/logger';
import { ensurePrivateDirectory, ensurePrivateFile } from '../store/privateFiles';
import {
  AuditStoreUnavailableError,
  compareAuditKeys,
  decodeAuditCursor,
  encodeAuditCursor,
  type AuditAppendResult,
  type AuditCursorKey,
  type AuditPage,
  type AuditQueryFilters,
  type AuditStore,
} from './auditStore';

export const DEFAULT_AUDIT_SEGMENT_BYTES = 64 * 1024 * 1024;
const LOCK_FILE = 'store.lock';
const SEGMENT_NAME = /^events-(\d{8})\.jsonl$/;
/** At most this many bytes go into one write; more queued batches wait for the next round. */
const MAX_ROUND_BYTES = 16 * 1024 * 1024;
/** Distinct filter values shared through `interned`; past this (unique resource URIs, say) values are kept as they come. */
const MAX_INTERNED = 100_000;
/** Contiguous lines are read together, up to this many bytes per read. */
const MAX_READ_BYTES = 4 * 1024 * 1024;

export interface FileAuditStoreOptions {
  /** A segment is closed once it reaches this size (default 64 MiB). */
  maxSegmentBytes?: number;
  log?: Logger;
}

/** Where an event is and what queries filter on; the event itself stays on disk. */
interface IndexEntry extends AuditCursorKey {
  readonly user: string;
  readonly server: string;
  readonly tool: string | undefined;
  readonly decision: string;
  /** Index into `segments`. */
  readonly segment: number;
  readonly offset: number;
  /** Bytes of the line without its newline. */
  readonly length: number;
}

interface Segment {
  name: string;
  path: string;
}

interface PendingAppend {
  events: AuditEvent[];
  bytes: number;
  resolve: (result: AuditAppendResult) => void;
  reject: (error: Error) => void;
}

export class AuditStoreDamagedError extends Error {
  constructor(dir: string, file: string, line: number, problem: string) {
    super(
      `The central audit store ${dir} is damaged at ${file} line ${line}: ${problem}. ` +
        'The policy server will not serve or extend a trail with a hole in it. Keep the file as evidence; ' +
        'to start anyway, move it out of the folder (its events will be missing centrally).',
    );
    this.name = 'AuditStoreDamagedError';
  }
}

export class FileAuditStore implements AuditStore {
  /** Sorted by (time, id). */
  private entries: IndexEntry[] = [];
  private readonly byId = new Map<string, IndexEntry>();
  /** Filter values repeat a lot (users, servers, tools): one string each. */
  private readonly interned = new Map<string, string>();
  private segments: Segment[] = [];
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
      options.log?.info('audit store open', { dir, events: store.entries.length, segments: store.segments.length });
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
    this.scan(filters, after, (entry) => {
      matched.push(entry);
      return matched.length <= limit;
    });
    const more = matched.length > limit;
    if (more) matched.pop();
    const events = await this.readEvents(matched);
    const last = matched.at(-1);
    return { events, ...(more && last ? { nextCursor: encodeAuditCursor(last) } : {}) };
  }

  async count(filters: AuditQueryFilters): Promise<number> {
    let count = 0;
    this.scan(filters, undefined, () => {
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
  // Queries

  /** Calls `visit` for each matching entry in order until it returns false. Synchronous, so the index cannot change under it. */
  private scan(filters: AuditQueryFilters, after: AuditCursorKey | undefined, visit: (entry: IndexEntry) => boolean): void {
    const fromMs = filters.from === undefined ? Number.NEGATIVE_INFINITY : Date.parse(filters.from);
    const toMs = filters.to === undefined ? Number.POSITIVE_INFINITY : Date.parse(filters.to);
    if (Number.isNaN(fromMs) || Number.isNaN(toMs)) throw new RangeError('from and to must be ISO 8601 times');
    const entries = this.entries;
    let start = fromMs === Number.NEGATIVE_INFINITY ? 0 : firstIndex(entries, (e) => e.timeMs >= fromMs);
    if (after)
      start = Math.max(
        start,
        firstIndex(entries, (e) => compareAuditKeys(e, after) > 0),
      );
    for (let i = start; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.timeMs >= toMs) break;
      if (filters.user !== undefined && entry.user !== filters.user) continue;
      if (filters.server !== undefined && entry.server !== filters.server) continue;
      if (filters.tool !== undefined && entry.tool !== filters.tool) continue;
      if (filters.decision !== undefined && entry.decision !== filters.decision) continue;
      if (!visit(entry)) return;
    }
  }

  /** The events of `entries`, in that order; lines next to each other in a segment are read together. */
  private async readEvents(entries: IndexEntry[]): Promise<AuditEvent[]> {
    const events = new Array<AuditEvent>(entries.length);
    const bySegment = new Map<number, number[]>();
    entries.forEach((entry, index) => {
      const list = bySegment.get(entry.segment);
      if (list) list.push(index);
      else bySegment.set(entry.segment, [index]);
    });
    for (const [segment, indexes] of bySegment) {
      indexes.sort((a, b) => entries[a]!.offset - entries[b]!.offset);
      const handle = await open(this.segments[segment]!.path, 'r');
      try {
        for (let i = 0; i < indexes.length;) {
          // A run of lines that follow each other on disk, read in one go.
          const first = entries[indexes[i]!]!;
          let end = first.offset + first.length;
          let j = i + 1;
          while (j < indexes.length) {
            const next = entries[indexes[j]!]!;
            if (next.offset !== end + 1 || next.offset + next.length - first.offset > MAX_READ_BYTES) break;
            end = next.offset + next.length;
            j++;
          }
          const buffer = await readExactly(handle, first.offset, end - first.offset);
          for (let k = i; k < j; k++) {
            const entry = entries[indexes[k]!]!;
            events[indexes[k]!] = JSON.parse(
              buffer.toString('utf8', entry.offset - first.offset, entry.offset - first.offset + entry.length),
            ) as AuditEvent;
          }
          i = j;
        }
      } finally {
        await handle.close();
      }
    }
    return events;
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
            const stored = this.byId.get(event.id) ?? inRound.get(event.id)?.entry;
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
            const entry = this.entryFor(event, segment, offset, length);
            inRound.set(event.id, { entry, json });
            fresh.push(entry);
            chunks.push(json, '\n');
            offset += length + 1;
            result.accepted++;
          }
        }
        if (chunks.length > 0) {
          const bytes = Buffer.from(chunks.join(''), 'utf8');
          let written = 0;
          while (written < bytes.length) {
            const { bytesWritten } = await writer.handle.write(bytes, written, bytes.length - written);
            written += bytesWritten;
          }
          await writer.handle.datasync();
          writer.size += bytes.length;
        }
      } catch (error) {
        this.fail(error, round);
        return;
      }
      this.index(fresh);
      for (let i = 0; i < round.length; i++) round[i]!.resolve(results[i]!);
      if (resent.length > 0) void this.checkResent(resent);
    }
  }

  private entryFor(event: AuditEvent, segment: number, offset: number, length: number): IndexEntry {
    return {
      id: event.id,
      timeMs: Date.parse(event.time),
      user: this.intern(event.user),
      server: this.intern(event.server),
      tool: event.tool === undefined ? undefined : this.intern(event.tool),
      decision: this.intern(event.decision),
      segment,
      offset,
      length,
    };
  }

  private intern(value: string): string {
    const known = this.interned.get(value);
    if (known !== undefined) return known;
    if (this.interned.size < MAX_INTERNED) this.interned.set(value, value);
    return value;
  }

  /** Adds durable entries to the index, keeping it sorted. Arrivals are nearly in time order, so this is mostly an append. */
  private index(fresh: IndexEntry[]): void {
    if (fresh.length === 0) return;
    for (const entry of fresh) this.byId.set(entry.id, entry);
    fresh.sort(compareAuditKeys);
    const last = this.entries.at(-1);
    if (!last || compareAuditKeys(fresh[0]!, last) > 0) {
      for (const entry of fresh) this.entries.push(entry);
      return;
    }
    // Late arrivals (a gateway that was offline): one merge, never a splice per event.
    const merged = new Array<IndexEntry>(this.entries.length + fresh.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < this.entries.length && j < fresh.length)
      merged[k++] = compareAuditKeys(this.entries[i]!, fresh[j]!) <= 0 ? this.entries[i++]! : fresh[j++]!;
    while (i < this.entries.length) merged[k++] = this.entries[i++]!;
    while (j < fresh.length) merged[k++] = fresh[j++]!;
    this.entries = merged;
  }

  /** A resent event differing from the stored copy is not stored (the first copy stands), but it is worth a warning. */
  private async checkResent(resent: Array<{ entry: IndexEntry; json: string }>): Promise<void> {
    try {
      const stored = await this.readEvents(resent.map((r) => r.entry));
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
    const last = this.segments.at(-1);
    const number = last ? Number(SEGMENT_NAME.exec(last.name)![1]) + 1 : 1;
    const name = `events-${String(number).padStart(8, '0')}.jsonl`;
    const path = join(this.dir, name);
    const handle = await open(
      path,
      fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
      0o600,
    );
    fsyncDirectory(this.dir);
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
    const names = readdirSync(this.dir)
      .filter((name) => SEGMENT_NAME.test(name))
      .sort();
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
        } else if (this.byId.has(event.id)) {
          duplicates++;
        } else {
          const entry = this.entryFor(event, s, offset, end - offset);
          this.byId.set(entry.id, entry);
          this.entries.push(entry);
        }
        offset = end + 1;
      }
      if (isLast) {
        const size = cutAt ? cutAt.offset : content.length;
        const handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW);
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
    this.entries.sort(compareAuditKeys);
    if (duplicates > 0) this.log?.warn('audit store: ignored repeated event ids while opening', { duplicates });
  }
}

/** What the index needs from a stored line; the store only ever wrote validated events, so this checks shape, not the schema. */
function parseStoredLine(line: string): AuditEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const event = value as Partial<Record<keyof AuditEvent, unknown>>;
  const ok =
    typeof event.id === 'string' &&
    typeof event.time === 'string' &&
    !Number.isNaN(Date.parse(event.time)) &&
    typeof event.user === 'string' &&
    typeof event.server === 'string' &&
    typeof event.decision === 'string' &&
    (event.tool === undefined || typeof event.tool === 'string');
  return ok ? (value as AuditEvent) : undefined;
}

/** Index of the first entry for which `atOrAfter` holds (entries are sorted, so it holds for every later one). */
function firstIndex(entries: IndexEntry[], atOrAfter: (entry: IndexEntry) => boolean): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (atOrAfter(entries[middle]!)) high = middle;
    else low = middle + 1;
  }
  return low;
}

async function readExactly(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let read = 0;
  while (read < length) {
    const { bytesRead } = await handle.read(buffer, read, length - read, position + read);
    if (bytesRead === 0) throw new Error('an audit segment is shorter than its index says');
    read += bytesRead;
  }
  return buffer;
}

/** The store's owner: one policy server writes it at a time. */
function acquireStoreLock(dir: string): ProcessLock {
  const path = join(dir, LOCK_FILE);
  return ProcessLock.acquire(
    path,
    (owner) =>
      `the audit store ${dir} is in use by process ${owner}; one policy server writes it at a time (if that process is not a policy server, delete ${path})`,
  );
}
