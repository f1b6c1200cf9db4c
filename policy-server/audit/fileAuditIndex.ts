/**
 * The embedded audit store's in-memory index (fileAuditStore.ts): for each stored event,
 * where its line is and the fields queries filter on, sorted by (time, id), plus the id
 * lookup that makes a resent event a duplicate. Queries run on it synchronously; the events
 * themselves stay on disk.
 */
import type { AuditEvent } from '../../common/audit/auditEvent';
import { compareAuditKeys, type AuditCursorKey, type AuditQueryFilters } from './auditStore';
import type { StoredLineLocation } from './fileAuditSegments';

/** Distinct filter values shared through `interned`; past this (unique resource URIs, say) values are kept as they come. */
const MAX_INTERNED = 100_000;

/** Where an event is and what queries filter on; the event itself stays on disk. */
export interface IndexEntry extends AuditCursorKey, StoredLineLocation {
  readonly user: string;
  readonly server: string;
  readonly tool: string | undefined;
  readonly decision: string;
}

export class FileAuditIndex {
  /** Sorted by (time, id). */
  private entries: IndexEntry[] = [];
  private readonly byId = new Map<string, IndexEntry>();
  /** Filter values repeat a lot (users, servers, tools): one string each. */
  private readonly interned = new Map<string, string>();

  get size(): number {
    return this.entries.length;
  }

  get(id: string): IndexEntry | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** While opening: entries come in file order, unsorted; `finishLoading` sorts them once. */
  load(entry: IndexEntry): void {
    this.byId.set(entry.id, entry);
    this.entries.push(entry);
  }

  finishLoading(): void {
    this.entries.sort(compareAuditKeys);
  }

  /** Calls `visit` for each matching entry in order until it returns false. Synchronous, so the index cannot change under it. */
  scan(filters: AuditQueryFilters, after: AuditCursorKey | undefined, visit: (entry: IndexEntry) => boolean): void {
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

  entryFor(event: AuditEvent, segment: number, offset: number, length: number): IndexEntry {
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
  add(fresh: IndexEntry[]): void {
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
