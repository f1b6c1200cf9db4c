import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AuditEvent } from '../../../common/audit/auditEvent';
import type { Logger } from '../../../common/log/logger';
import { AuditShipper, type AuditShipperOptions } from '../../../gateway/audit/auditShipper';
import { AuditSpool } from '../../../gateway/audit/auditSpool';
import { removeScratchDirs, sampleEvent, scratchDir } from './auditTestEvents';

interface Received {
  authorization: string | undefined;
  path: string | undefined;
  events: AuditEvent[];
  bytes: number;
}

/** A stand-in policy server: records batches and answers as `answer` says (default: like the real one, idempotent). */
class FakePolicyServer {
  readonly batches: Received[] = [];
  readonly stored = new Map<string, AuditEvent>();
  answer: (req: IncomingMessage, events: AuditEvent[], res: ServerResponse) => boolean = () => false;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const events = (JSON.parse(body.toString('utf8')) as { events: AuditEvent[] }).events;
        this.batches.push({ authorization: req.headers.authorization, path: req.url, events, bytes: body.length });
        if (this.answer(req, events, res)) return;
        let accepted = 0;
        for (const event of events) {
          if (!this.stored.has(event.id)) {
            this.stored.set(event.id, event);
            accepted++;
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted, duplicates: events.length - accepted }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/base`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<number> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - started;
}

describe('audit shipper', () => {
  after(removeScratchDirs);
  let server: FakePolicyServer;
  let spool: AuditSpool;
  let shipper: AuditShipper | undefined;

  beforeEach(async () => {
    server = new FakePolicyServer();
    await server.start();
    spool = await AuditSpool.open({ dir: scratchDir('shipper'), checkpointEveryEvents: 4 });
  });
  afterEach(async () => {
    await shipper?.stop();
    shipper = undefined;
    await spool.close();
    await server.stop();
  });

  const startShipper = (options: Partial<AuditShipperOptions> = {}) => {
    shipper = new AuditShipper({
      spool,
      serverUrl: new URL(server.url),
      user: 'alice@example.com',
      log: quiet,
      token: async () => 'token-1',
      debounceMs: 20,
      retryMinMs: 20,
      retryMaxMs: 80,
      ...options,
    });
    shipper.start();
    return shipper;
  };
  const append = async (count: number, overrides: Partial<AuditEvent> = {}) => {
    const events = Array.from({ length: count }, (_, n) => sampleEvent(n, overrides));
    for (const event of events) await spool.append(event);
    return events;
  };

  it('catches up on start: every event once, exactly as spooled, checkpoints left out, cursor at the end', async () => {
    const events = await append(10);
    startShipper();
    await waitFor(() => spool.shippedThrough() === spool.stats().lastSeq);
    assert.deepEqual([...server.stored.values()], events);
    assert.equal(server.batches[0]!.authorization, 'Bearer token-1');
    assert.equal(server.batches[0]!.path, '/base/v1/audit', 'a base path in the server URL is kept');
    assert.equal(shipper!.status().eventsShipped, 10);
  });

  it('wakes on notify() after new appends', async () => {
    startShipper();
    await waitFor(() => spool.shippedThrough() === spool.stats().lastSeq);
    const events = await append(3);
    shipper!.notify();
    shipper!.notify();
    const took = await waitFor(() => server.stored.size === 3);
    assert.ok(took < 1_000, `shipped ${took} ms after notify`);
    assert.deepEqual([...server.stored.values()], events);
  });

  it('moves the cursor only after a 2xx, retries with backoff, and delivers everything once the server is back', async () => {
    let failing = true;
    server.answer = (_req, _events, res) => {
      if (!failing) return false;
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unavailable', message: 'down' }));
      return true;
    };
    const events = await append(6);
    startShipper();
    await waitFor(() => server.batches.length >= 4);
    assert.equal(spool.shippedThrough(), 0, 'nothing acknowledged, nothing marked');
    assert.ok(shipper!.status().failures >= 3);
    assert.match(shipper!.status().lastError ?? '', /HTTP 503: down/);
    const times = server.batches.length;
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(server.batches.length - times <= 2, 'backoff caps the retry rate');
    failing = false;
    await waitFor(() => spool.shippedThrough() === spool.stats().lastSeq);
    assert.deepEqual([...server.stored.values()], events);
    assert.equal(shipper!.status().failures, 0);
  });

  it('sets aside events the server refuses as invalid, and ships the rest', async () => {
    const events = await append(7);
    const bad = events[4]!.id;
    server.answer = (_req, batch, res) => {
      if (!batch.some((event) => event.id === bad)) return false;
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'invalid_request', message: 'events.0.latencyMs: too small' }));
      return true;
    };
    const deadLetterPath = join(dirname(scratchDir('dead-letter')), 'dead-letter.jsonl');
    startShipper({ deadLetterPath });
    await waitFor(() => spool.shippedThrough() === spool.stats().lastSeq);
    assert.deepEqual(
      [...server.stored.keys()].sort(),
      events
        .filter((e) => e.id !== bad)
        .map((e) => e.id)
        .sort(),
    );
    const set = readFileSync(deadLetterPath, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { reason: string; event: AuditEvent });
    assert.deepEqual(
      set.map((entry) => entry.event),
      [events[4]],
    );
    assert.match(set[0]!.reason, /HTTP 400: events.0.latencyMs: too small/);
    assert.equal(shipper!.status().deadLettered, 1);
    assert.equal(statSync(deadLetterPath).mode & 0o777, 0o600);
  });

  it('does not move the cursor when the answer does not account for every event', async () => {
    server.answer = (_req, _events, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: 1, duplicates: 0 }));
      return true;
    };
    await append(3);
    startShipper();
    await waitFor(() => server.batches.length >= 2);
    assert.equal(spool.shippedThrough(), 0);
  });

  it('splits batches by event count and by bytes', async () => {
    await append(23);
    startShipper({ maxBatchEvents: 5 });
    await waitFor(() => server.stored.size === 23);
    assert.ok(server.batches.every((b) => b.events.length <= 5));
    await shipper!.stop();
    const more = await append(12, { flags: ['x'.repeat(60)] });
    const perEvent = Buffer.byteLength(JSON.stringify(more[0])) + 1;
    const before = server.batches.length;
    startShipper({ maxBatchBytes: 14 + perEvent * 3 + 10 });
    await waitFor(() => server.stored.size === 35);
    const sized = server.batches.slice(before);
    assert.ok(
      sized.every((b) => b.events.length <= 3 && b.bytes <= 14 + perEvent * 3 + 10),
      sized.map((b) => `${b.events.length}/${b.bytes}`).join(' '),
    );
  });

  it("ships only the signed-in user's events", async () => {
    await append(2, { user: 'local' });
    const mine = await append(2);
    startShipper();
    await waitFor(() => spool.shippedThrough() === spool.stats().lastSeq);
    assert.deepEqual([...server.stored.values()], mine);
    assert.equal(shipper!.status().skipped, 2);
  });

  it('resends after a lost acknowledgement without the server storing twice (at least once, idempotent)', async () => {
    let dropped = false;
    server.answer = (_req, events, res) => {
      if (dropped) return false;
      dropped = true;
      for (const event of events) server.stored.set(event.id, event); // stored, but the answer is lost
      res.destroy();
      return true;
    };
    const events = await append(4);
    startShipper();
    await waitFor(() => spool.shippedThrough() === spool.stats().lastSeq);
    assert.equal(server.batches.length, 2);
    assert.deepEqual(
      server.batches[1]!.events.map((e) => e.id),
      events.map((e) => e.id),
    );
    assert.equal(shipper!.status().duplicates, 4);
    assert.equal(server.stored.size, 4);
  });

  it('stops promptly with a request in flight and leaves the cursor alone', async () => {
    server.answer = () => true; // never answers
    await append(2);
    startShipper();
    await waitFor(() => server.batches.length === 1);
    const started = Date.now();
    await shipper!.stop();
    assert.ok(Date.now() - started < 1_000);
    assert.equal(spool.shippedThrough(), 0);
  });
});
