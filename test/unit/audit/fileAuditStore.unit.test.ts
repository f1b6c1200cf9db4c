import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAuditEventId, type AuditEvent } from '../../../common/audit/auditEvent';
import { InvalidAuditCursorError, type AuditQueryFilters } from '../../../policy-server/audit/auditStore';
import { AuditStoreDamagedError, FileAuditStore } from '../../../policy-server/audit/fileAuditStore';
import { removeScratchDirs, sampleEvent, scratchDir } from './auditTestEvents';

const BASE = Date.parse('2025-03-01T12:00:00.000Z');

/** Event `n` of a trail: a second apart, users/servers/tools/decisions varying by n. */
function trailEvent(n: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return sampleEvent(n, {
    id: createAuditEventId(),
    time: new Date(BASE + n * 1000).toISOString(),
    user: n % 2 === 0 ? 'alice' : 'bob',
    server: n % 3 === 0 ? 'github' : 'memory',
    ...overrides,
  });
}

async function allPages(
  store: FileAuditStore,
  filters: AuditQueryFilters,
  limit: number,
): Promise<{ events: AuditEvent[]; pages: number }> {
  const events: AuditEvent[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.query(filters, { limit, ...(cursor ? { cursor } : {}) });
    pages++;
    assert.ok(page.events.length <= limit);
    events.push(...page.events);
    cursor = page.nextCursor;
  } while (cursor);
  return { events, pages };
}

describe('central audit store (append-only files)', () => {
  after(removeScratchDirs);
  const opened: FileAuditStore[] = [];
  const openStore = async (dir: string, options: Parameters<typeof FileAuditStore.open>[1] = {}) => {
    const store = await FileAuditStore.open(dir, options);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  it('keeps a private folder: 0700, every file 0600, events as JSON lines', async () => {
    const dir = scratchDir('central');
    const store = await openStore(dir);
    const events = [trailEvent(1), trailEvent(2)];
    assert.deepEqual(await store.append(events), { accepted: 2, duplicates: 0 });
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(dir).sort(), ['events-00000001.jsonl', 'store.lock']);
    for (const name of readdirSync(dir)) assert.equal(statSync(join(dir, name)).mode & 0o777, 0o600, name);
    const lines = readFileSync(join(dir, 'events-00000001.jsonl'), 'utf8').split('\n');
    assert.deepEqual(lines, [JSON.stringify(events[0]), JSON.stringify(events[1]), '']);
  });

  it('is idempotent by event id: resends, repeats in a batch and concurrent batches store each event once', async () => {
    const store = await openStore(scratchDir('central'));
    const events = Array.from({ length: 10 }, (_, n) => trailEvent(n));
    assert.deepEqual(await store.append(events), { accepted: 10, duplicates: 0 });
    assert.deepEqual(await store.append(events), { accepted: 0, duplicates: 10 });
    const more = [trailEvent(20), trailEvent(21)];
    assert.deepEqual(await store.append([more[0]!, events[3]!, more[0]!, more[1]!]), { accepted: 2, duplicates: 2 });
    // Concurrent batches overlapping each other (and the store): every id stored once.
    const fresh = Array.from({ length: 30 }, (_, n) => trailEvent(100 + n));
    const results = await Promise.all([
      store.append(fresh.slice(0, 20)),
      store.append(fresh.slice(10, 30)),
      store.append([...fresh.slice(5, 15), events[0]!]),
    ]);
    assert.equal(
      results.reduce((sum, r) => sum + r.accepted, 0),
      30,
    );
    assert.equal(
      results.reduce((sum, r) => sum + r.duplicates, 0),
      20 + 20 + 11 - 30,
    );
    assert.equal(await store.count({}), 42);
    const ids = (await allPages(store, {}, 1000)).events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('keeps the first copy when an id is resent with different content', async () => {
    const warnings: string[] = [];
    const log = {
      debug() {},
      info() {},
      warn: (m: string) => warnings.push(m),
      error() {},
      child() {
        return log;
      },
    };
    const store = await openStore(scratchDir('central'), { log });
    const event = trailEvent(1, { tool: 'original' });
    await store.append([event]);
    assert.deepEqual(await store.append([{ ...event, tool: 'rewritten' }]), { accepted: 0, duplicates: 1 });
    const { events } = await store.query({}, { limit: 10 });
    assert.equal(events[0]!.tool, 'original');
    for (let i = 0; i < 50 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(warnings.join('\n'), /different content; the first stored copy is kept/);
  });

  it('filters by user, server, tool, decision and time (from inclusive, to exclusive)', async () => {
    const store = await openStore(scratchDir('central'));
    const events = Array.from({ length: 60 }, (_, n) => trailEvent(n));
    await store.append(events);
    const expect = async (filters: AuditQueryFilters, predicate: (e: AuditEvent) => boolean) => {
      const wanted = events.filter(predicate).map((e) => e.id);
      assert.ok(wanted.length > 0, `filter ${JSON.stringify(filters)} matches something`);
      assert.deepEqual(
        (await store.query(filters, { limit: 1000 })).events.map((e) => e.id),
        wanted,
        JSON.stringify(filters),
      );
      assert.equal(await store.count(filters), wanted.length);
    };
    await expect({ user: 'alice' }, (e) => e.user === 'alice');
    await expect({ server: 'github' }, (e) => e.server === 'github');
    await expect({ tool: 'delete_repo' }, (e) => e.tool === 'delete_repo');
    await expect({ decision: 'confirm-approved' }, (e) => e.decision === 'confirm-approved');
    await expect(
      { user: 'bob', server: 'memory', tool: 'list_issues' },
      (e) => e.user === 'bob' && e.server === 'memory' && e.tool === 'list_issues',
    );
    const from = new Date(BASE + 10_000).toISOString();
    const to = new Date(BASE + 20_000).toISOString();
    await expect({ from, to }, (e) => Date.parse(e.time) >= BASE + 10_000 && Date.parse(e.time) < BASE + 20_000);
    await expect({ from: '2025-03-01T13:00:10+01:00' }, (e) => Date.parse(e.time) >= BASE + 10_000);
    await expect({ to, user: 'alice' }, (e) => Date.parse(e.time) < BASE + 20_000 && e.user === 'alice');
    assert.equal(await store.count({ user: 'nobody' }), 0);
    assert.deepEqual(await store.query({ user: 'nobody' }, { limit: 5 }), { events: [] });
  });

  it('pages with a cursor: every match once, in (time, id) order, late arrivals in their place', async () => {
    const store = await openStore(scratchDir('central'));
    const events = Array.from({ length: 250 }, (_, n) => trailEvent(n + 10));
    await store.append(events.slice(0, 120));
    await store.append(events.slice(120));
    // A gateway that was offline ships old events late; two events share one time.
    const late = [trailEvent(3), trailEvent(5), trailEvent(5)];
    await store.append(late);
    const all = [...late, ...events].sort((a, b) => Date.parse(a.time) - Date.parse(b.time) || (a.id < b.id ? -1 : 1));
    const { events: paged, pages } = await allPages(store, {}, 7);
    assert.equal(pages, Math.ceil(all.length / 7));
    assert.deepEqual(
      paged.map((e) => e.id),
      all.map((e) => e.id),
    );
    const alice = await allPages(store, { user: 'alice' }, 10);
    assert.deepEqual(
      alice.events.map((e) => e.id),
      all.filter((e) => e.user === 'alice').map((e) => e.id),
    );
    const exact = await store.query({}, { limit: all.length });
    assert.equal(exact.events.length, all.length);
    assert.equal(exact.nextCursor, undefined, 'no cursor when nothing more matches');
    await assert.rejects(store.query({}, { limit: 5, cursor: 'bm90LWEtY3Vyc29y' }), InvalidAuditCursorError);
    await assert.rejects(store.query({}, { limit: 5, cursor: '!!!' }), InvalidAuditCursorError);
  });

  it('rebuilds its index on open: same answers, resends still recognised, appends continue', async () => {
    const dir = scratchDir('central');
    let store = await FileAuditStore.open(dir);
    const events = Array.from({ length: 40 }, (_, n) => trailEvent(n));
    await store.append(events.slice(0, 25));
    await store.append(events.slice(25));
    const before = await allPages(store, {}, 9);
    await store.close();
    store = await openStore(dir);
    assert.equal(await store.count({}), 40);
    assert.deepEqual((await allPages(store, {}, 9)).events, before.events);
    assert.deepEqual(await store.append(events.slice(10, 20)), { accepted: 0, duplicates: 10 });
    assert.deepEqual(await store.append([trailEvent(99)]), { accepted: 1, duplicates: 0 });
    assert.equal(await store.count({ user: 'bob' }), 21);
  });

  it('spreads events over segments and reads across them, before and after a restart', async () => {
    const dir = scratchDir('central');
    let store = await FileAuditStore.open(dir, { maxSegmentBytes: 2_000 });
    const events = Array.from({ length: 60 }, (_, n) => trailEvent(n));
    for (let i = 0; i < 60; i += 6) await store.append(events.slice(i, i + 6));
    assert.ok(readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length >= 5, readdirSync(dir).join(' '));
    assert.deepEqual((await allPages(store, {}, 11)).events, events);
    await store.close();
    store = await openStore(dir, { maxSegmentBytes: 2_000 });
    assert.deepEqual((await allPages(store, {}, 13)).events, events);
    assert.deepEqual(
      (await store.query({ user: 'alice', server: 'github' }, { limit: 100 })).events,
      events.filter((e) => e.user === 'alice' && e.server === 'github'),
    );
  });

  it('cuts an interrupted write from the end of the last segment, and refuses damage anywhere else', async () => {
    const dir = scratchDir('central');
    let store = await FileAuditStore.open(dir);
    const events = Array.from({ length: 5 }, (_, n) => trailEvent(n));
    await store.append(events);
    await store.close();
    const segment = join(dir, 'events-00000001.jsonl');
    const good = readFileSync(segment);
    appendFileSync(segment, JSON.stringify(trailEvent(7)).slice(0, 80)); // torn: no newline
    store = await FileAuditStore.open(dir);
    assert.equal(await store.count({}), 5);
    assert.deepEqual(readFileSync(segment), good);
    await store.append([trailEvent(8)]);
    assert.equal(await store.count({}), 6);
    await store.close();
    // A whole line of garbage (zeros after a power cut) at the end: also an unacknowledged write.
    appendFileSync(segment, '\0\0\0\0\n');
    store = await FileAuditStore.open(dir);
    assert.equal(await store.count({}), 6);
    await store.close();
    // Garbage with complete events after it is not an interrupted write.
    const lines = readFileSync(segment, 'utf8').split('\n');
    lines.splice(2, 0, '{"not":"an event"}');
    writeFileSync(segment, lines.join('\n'));
    await assert.rejects(
      FileAuditStore.open(dir),
      (error: unknown) => error instanceof AuditStoreDamagedError && /events-00000001\.jsonl line 3/.test(error.message),
    );
  });

  it('is written by one process at a time', async () => {
    const dir = scratchDir('central');
    const store = await openStore(dir);
    await assert.rejects(FileAuditStore.open(dir), /in use by process/);
    await store.close();
    opened.splice(0);
    await openStore(dir);
    // A lock left by a process that is gone is taken over.
    const other = scratchDir('central');
    const first = await FileAuditStore.open(other);
    await first.close();
    writeFileSync(join(other, 'store.lock'), '999999999\n');
    await openStore(other);
  });
});
