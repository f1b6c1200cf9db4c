/**
 * The embedded audit store's files: `events-<8 digits>.jsonl` segments (0600), one event
 * JSON a line, in `<data-dir>/audit/` with the `store.lock` owner file; reading stored lines
 * back by offset, what counts as a stored line when the index is rebuilt, and the error that
 * refuses a damaged trail.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessLock } from '../../common/processLock';
import type { AuditEvent } from '../../common/audit/auditEvent';

const LOCK_FILE = 'store.lock';
const SEGMENT_NAME = /^events-(\d{8})\.jsonl$/;
/** Contiguous lines are read together, up to this many bytes per read. */
const MAX_READ_BYTES = 4 * 1024 * 1024;

export interface AuditSegment {
  name: string;
  path: string;
}

/** Where a stored event's line is. */
export interface StoredLineLocation {
  /** Index into the store's segments. */
  readonly segment: number;
  readonly offset: number;
  /** Bytes of the line without its newline. */
  readonly length: number;
}

/** The segment files in `dir`, oldest first. */
export function listSegmentNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => SEGMENT_NAME.test(name))
    .sort();
}

/** The segment that follows `last` (the first one when there is none). */
export function nextSegment(dir: string, last: AuditSegment | undefined): AuditSegment {
  const number = last ? Number(SEGMENT_NAME.exec(last.name)![1]) + 1 : 1;
  const name = `events-${String(number).padStart(8, '0')}.jsonl`;
  return { name, path: join(dir, name) };
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

/** The events of `entries`, in that order; lines next to each other in a segment are read together. */
export async function readStoredEvents(segments: AuditSegment[], entries: StoredLineLocation[]): Promise<AuditEvent[]> {
  const events = new Array<AuditEvent>(entries.length);
  const bySegment = new Map<number, number[]>();
  entries.forEach((entry, index) => {
    const list = bySegment.get(entry.segment);
    if (list) list.push(index);
    else bySegment.set(entry.segment, [index]);
  });
  for (const [segment, indexes] of bySegment) {
    indexes.sort((a, b) => entries[a]!.offset - entries[b]!.offset);
    const handle = await open(segments[segment]!.path, 'r');
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

/** What the index needs from a stored line; the store only ever wrote validated events, so this checks shape, not the schema. */
export function parseStoredLine(line: string): AuditEvent | undefined {
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
export function acquireStoreLock(dir: string): ProcessLock {
  const path = join(dir, LOCK_FILE);
  return ProcessLock.acquire(
    path,
    (owner) =>
      `the audit store ${dir} is in use by process ${owner}; one policy server writes it at a time (if that process is not a policy server, delete ${path})`,
  );
}
