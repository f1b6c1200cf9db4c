/**
 * Ships the local audit trail to the policy server (managed mode; DESIGN.md flow 6): a
 * background loop reads the spool's events after its shipping cursor, POSTs them to
 * `/v1/audit` in batches with the user's IdP token, and moves the cursor only after the
 * server answered 2xx, which it does only once the events are durable on its side.
 *
 * At-least-once: the cursor (`shipped.json`, written atomically) never passes an event the
 * server has not acknowledged, and the spool keeps everything after it, across restarts and
 * crashes. A crash between the server's answer and the cursor write sends that batch
 * again; the server is idempotent by event id, so the central copy still has each event
 * once. Failures are retried with backoff (1 s doubling to 30 s); new calls do not cut the
 * backoff short, so a busy gateway never hammers a server that is down.
 *
 * Prompt: `notify()` (the CallAuditor calls it after each durable append) wakes the loop
 * after a short coalescing delay (200 ms), so a burst of calls becomes one batch; `start()`
 * ships whatever is left from before (a restart, a crash, time offline).
 *
 * Only the signed-in user's events are shipped: the server refuses events for anyone else.
 * Events under another name (`local`, from unmanaged runs on the same state dir) are skipped
 * with a warning; they stay in the local spool, where `gatehouse audit verify` still covers them.
 * Checkpoint records are not sent (the API takes events); they stay in the spool as well.
 */
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import {
  AUDIT_BATCH_MAX_BYTES,
  AUDIT_BATCH_MAX_EVENTS,
  POLICY_SERVER_PATHS,
  type AuditBatchResponse,
} from '../../common/policy/policyServerApi';
import { describeError, type Logger } from '../../common/log/logger';
import type { PolicyServerArgs } from '../cli/gatewayArgs';
import type { AuditSpool, AuditStoredRecord } from './auditSpool';

export type ShippingSpool = Pick<AuditSpool, 'readSince' | 'shippedThrough' | 'markShipped' | 'stats'>;

export interface AuditShipperOptions {
  spool: ShippingSpool;
  /** The policy server; `/v1/audit` is resolved against it (a base path is kept). */
  serverUrl: URL;
  /** The user's IdP token, asked for on every request so a refreshed token is used. */
  token: () => Promise<string>;
  /** The signed-in user's `sub`: the only user whose events the server accepts from us. */
  user: string;
  log: Logger;
  /** Delay between the first `notify()` and the batch it triggers (default 200 ms). */
  debounceMs?: number;
  /** First retry delay after a failure (default 1 s), doubling up to `retryMaxMs` (default 30 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Batch bounds (default: the API's 500 events / 1 MiB). */
  maxBatchEvents?: number;
  maxBatchBytes?: number;
  requestTimeoutMs?: number;
  /**
   * Where events the server refuses as invalid (400) go, one JSON line each, so one bad
   * event (a schema skew between versions, say) cannot block the trail behind it. Without
   * it such a batch is retried forever.
   */
  deadLetterPath?: string;
}

export interface AuditShipperStatus {
  /** Highest spool seq the policy server has acknowledged. */
  shippedThrough: number;
  /** Events sent and acknowledged since start (including ones the server already had). */
  eventsShipped: number;
  /** Of those, how many the server reported as already stored. */
  duplicates: number;
  /** Events not shipped because they name another user. */
  skipped: number;
  /** Events the server refused as invalid, set aside in the dead-letter file. */
  deadLettered: number;
  /** Failures in a row; 0 while shipping works. */
  failures: number;
  lastError?: string;
}

/** Bytes of `{"events":[` + `]}`. */
const BODY_OVERHEAD = 14;
/** Characters after the event in a spool line: `,"hash":"<64 hex>"}`. */
const LINE_HASH_SUFFIX = ',"hash":"'.length + 64 + '"}'.length;
const EVENT_MEMBER = ',"event":';
/** Most bytes of a response we read: ours are tiny, a proxy's error page need not be. */
const MAX_RESPONSE_BYTES = 64 * 1024;

class ShippingError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ShippingError';
  }
}

export class AuditShipper {
  private readonly debounceMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly maxBatchBytes: number;
  private readonly requestTimeoutMs: number;
  private maxBatchEvents: number;
  private readonly endpoint: URL;
  private readonly aborter = new AbortController();
  private loop: Promise<void> | undefined;
  private stopped = false;
  /** Something may be waiting to ship. */
  private wanted = false;
  private debounce: NodeJS.Timeout | undefined;
  private waiter: (() => void) | undefined;
  private backoff: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private readonly counters = { eventsShipped: 0, duplicates: 0, skipped: 0, deadLettered: 0, failures: 0 };
  private lastError: string | undefined;

  constructor(private readonly options: AuditShipperOptions) {
    this.debounceMs = options.debounceMs ?? 200;
    this.retryMinMs = options.retryMinMs ?? 1_000;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.maxBatchEvents = Math.max(1, Math.min(options.maxBatchEvents ?? AUDIT_BATCH_MAX_EVENTS, AUDIT_BATCH_MAX_EVENTS));
    this.maxBatchBytes = Math.min(options.maxBatchBytes ?? AUDIT_BATCH_MAX_BYTES, AUDIT_BATCH_MAX_BYTES);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    const base = options.serverUrl.href.endsWith('/') ? options.serverUrl.href : `${options.serverUrl.href}/`;
    this.endpoint = new URL(POLICY_SERVER_PATHS.audit.replace(/^\//, ''), base);
  }

  /** Starts the loop; it first ships whatever the spool holds beyond the cursor. */
  start(): void {
    if (this.loop || this.stopped) return;
    this.wanted = true;
    this.loop = this.run();
  }

  /** New events are durable in the spool: ship them soon. Cheap; calls within the delay share one wake-up. */
  notify(): void {
    if (this.stopped || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.wake();
    }, this.debounceMs);
    this.debounce.unref();
  }

  /** Stops the loop and abandons a request in flight; what was not acknowledged stays in the spool for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.debounce);
    this.debounce = undefined;
    this.aborter.abort();
    this.wake();
    if (this.backoff) {
      clearTimeout(this.backoff.timer);
      this.backoff.resolve();
    }
    await this.loop?.catch(() => undefined);
  }

  status(): AuditShipperStatus {
    return {
      shippedThrough: this.options.spool.shippedThrough(),
      ...this.counters,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  private wake(): void {
    this.wanted = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.wanted) {
        await new Promise<void>((resolve) => {
          this.waiter = resolve;
        });
        continue;
      }
      this.wanted = false;
      try {
        await this.shipPending();
        if (this.counters.failures > 0) {
          this.options.log.info('audit shipping works again', {
            after: this.counters.failures,
            shippedThrough: this.options.spool.shippedThrough(),
          });
        }
        this.counters.failures = 0;
        this.lastError = undefined;
      } catch (error) {
        if (this.stopped) break;
        this.counters.failures++;
        this.lastError = describeError(error);
        const delay = Math.min(this.retryMinMs * 2 ** Math.min(this.counters.failures - 1, 30), this.retryMaxMs);
        const { lastSeq } = this.options.spool.stats();
        this.options.log.warn('audit shipping failed; the events stay in the local spool and are retried', {
          error: this.lastError,
          failures: this.counters.failures,
          retryInMs: delay,
          shippedThrough: this.options.spool.shippedThrough(),
          spoolLastSeq: lastSeq,
        });
        await new Promise<void>((resolve) => {
          this.backoff = { timer: setTimeout(resolve, delay), resolve };
        });
        this.backoff = undefined;
        this.wanted = true;
      }
    }
  }

  /** Ships batches until the spool has nothing beyond the cursor. Throws on the first failure; the cursor then stays where it is. */
  private async shipPending(): Promise<void> {
    const { spool } = this.options;
    while (!this.stopped) {
      const after = spool.shippedThrough();
      const records = await spool.readSince(after, this.maxBatchEvents);
      if (records.length === 0) return;
      const events: Array<{ seq: number; json: string }> = [];
      let bytes = BODY_OVERHEAD;
      let lastSeq = after;
      let skipped = 0;
      for (const record of records) {
        if (record.kind === 'event' && record.event.user === this.options.user) {
          const json = eventJson(record);
          const size = Buffer.byteLength(json) + 1;
          if (events.length > 0 && (events.length >= this.maxBatchEvents || bytes + size > this.maxBatchBytes)) break;
          events.push({ seq: record.seq, json });
          bytes += size;
        } else if (record.kind === 'event') {
          skipped++;
        }
        lastSeq = record.seq;
      }
      if (skipped > 0) {
        this.counters.skipped += skipped;
        this.options.log.warn(
          "audit events recorded for another user are not shipped (the policy server accepts only the signed-in user's); they stay in the local spool",
          {
            events: skipped,
            user: this.options.user,
            throughSeq: lastSeq,
          },
        );
      }
      if (events.length > 0) await this.deliver(events);
      await spool.markShipped(lastSeq);
    }
  }

  /**
   * Posts a batch. When the server refuses it as invalid (400), halves it until the bad
   * events are alone, and sets those aside in the dead-letter file; the rest ship.
   */
  private async deliver(batch: Array<{ seq: number; json: string }>): Promise<void> {
    try {
      await this.post(batch.map((entry) => entry.json));
    } catch (error) {
      if (!(error instanceof ShippingError) || error.status !== 400 || this.options.deadLetterPath === undefined) throw error;
      if (batch.length > 1) {
        const half = Math.ceil(batch.length / 2);
        await this.deliver(batch.slice(0, half));
        await this.deliver(batch.slice(half));
        return;
      }
      const [entry] = batch as [{ seq: number; json: string }];
      await appendFile(
        this.options.deadLetterPath,
        JSON.stringify({
          seq: entry.seq,
          refusedAt: new Date().toISOString(),
          reason: error.message.slice(0, 1000),
          event: JSON.parse(entry.json) as unknown,
        }) + '\n',
        { mode: 0o600 },
      );
      this.counters.deadLettered++;
      this.options.log.error('the policy server refused an audit event as invalid; it is set aside and shipping goes on', {
        seq: entry.seq,
        reason: error.message,
        deadLetter: this.options.deadLetterPath,
      });
    }
  }

  private async post(events: string[]): Promise<void> {
    let response;
    try {
      response = await request(this.endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${await this.options.token()}`, 'content-type': 'application/json', accept: 'application/json' },
        body: `{"events":[${events.join(',')}]}`,
        signal: AbortSignal.any([this.aborter.signal, AbortSignal.timeout(this.requestTimeoutMs)]),
      });
    } catch (error) {
      throw new ShippingError(`cannot reach the policy server: ${describeError(error)}`);
    }
    const text = await readBounded(response.body, MAX_RESPONSE_BYTES);
    if (response.statusCode === 413 && events.length > 1) {
      // A server with a smaller limit than ours: send less at a time from now on.
      this.maxBatchEvents = Math.max(1, Math.floor(events.length / 2));
    }
    if (response.statusCode < 200 || response.statusCode > 299) {
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {
        /* not our error format */
      }
      throw new ShippingError(`the policy server answered HTTP ${response.statusCode}: ${message}`, response.statusCode);
    }
    let result: Partial<AuditBatchResponse>;
    try {
      result = JSON.parse(text) as Partial<AuditBatchResponse>;
    } catch {
      throw new ShippingError('the policy server acknowledged the batch with something that is not JSON');
    }
    // Only an answer that accounts for every event moves the cursor.
    if (
      typeof result.accepted !== 'number' ||
      typeof result.duplicates !== 'number' ||
      result.accepted + result.duplicates !== events.length
    ) {
      throw new ShippingError(
        `the policy server acknowledged ${String(result.accepted)} + ${String(result.duplicates)} of ${events.length} events`,
      );
    }
    this.counters.eventsShipped += events.length;
    this.counters.duplicates += result.duplicates;
    this.options.log.debug('audit batch shipped', { events: events.length, accepted: result.accepted, duplicates: result.duplicates });
  }
}

/** A managed gateway's shipper: the user's token is asked for on every request. */
export function createAuditShipper(
  args: PolicyServerArgs,
  token: () => Promise<string>,
  spool: ShippingSpool,
  spoolDir: string,
  user: string,
  log: Logger,
): AuditShipper {
  return new AuditShipper({
    spool,
    serverUrl: args.url,
    user,
    log,
    token,
    deadLetterPath: join(spoolDir, 'dead-letter.jsonl'),
  });
}

/**
 * The event exactly as the spool wrote (and hashed) it: the line is
 * `{"seq":..,"prev":"..","kind":"event","event":<event>,"hash":".."}`.
 */
function eventJson(record: AuditStoredRecord & { kind: 'event' }): string {
  const start = record.line.indexOf(EVENT_MEMBER);
  const json = start < 0 ? '' : record.line.slice(start + EVENT_MEMBER.length, record.line.length - LINE_HASH_SUFFIX);
  return json.startsWith('{') && json.endsWith('}') ? json : JSON.stringify(record.event);
}

async function readBounded(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
