/**
 * Audit export for security teams (off by default): every event the central store accepts
 * is also sent to the configured sinks (RFC 5424 syslog, OpenTelemetry logs over OTLP/HTTP).
 * Export never slows or fails ingest: the store answers the gateway once its own write is
 * durable, and each sink drains its own bounded queue in the background, retrying a failed
 * batch a few times before dropping it with a warning. Delivery is at least once (a resend
 * the store counts as a duplicate may be exported again after a restart); every record
 * carries the event id for de-duplication downstream. What is exported is the audit event
 * itself, which never holds arguments or results (a keyed digest and redaction counts only).
 */
import type { AuditEvent } from '../../../common/audit/auditEvent';
import { describeError, type Logger } from '../../../common/log/logger';
import type { AuditAppendResult, AuditPage, AuditQueryFilters, AuditStore } from '../auditStore';

export interface AuditSink {
  /** For logs: `syslog udp://host:514`; never a secret. */
  readonly name: string;
  send(events: AuditEvent[]): Promise<void>;
  close(): Promise<void>;
}

const MAX_QUEUED_PER_SINK = 100_000;
const BATCH = 500;
const ATTEMPTS = 3;
const RETRY_MS = 1_000;
/** Ids exported lately: a gateway's resend of a batch is not exported twice. */
const RECENT_IDS = 100_000;

class SinkQueue {
  private readonly queue: AuditEvent[] = [];
  private draining: Promise<void> | undefined;
  dropped = 0;

  constructor(
    readonly sink: AuditSink,
    private readonly log: Logger,
  ) {}

  push(events: AuditEvent[]): void {
    this.queue.push(...events);
    const over = this.queue.length - MAX_QUEUED_PER_SINK;
    if (over > 0) {
      this.queue.splice(0, over);
      this.dropped += over;
      this.log.warn('audit export queue full: oldest events dropped', { sink: this.sink.name, dropped: over });
    }
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
  }

  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH);
      for (let attempt = 1; ; attempt++) {
        try {
          await this.sink.send(batch);
          break;
        } catch (error) {
          if (attempt >= ATTEMPTS) {
            this.dropped += batch.length;
            this.log.warn('audit export failed: batch dropped', {
              sink: this.sink.name,
              events: batch.length,
              error: describeError(error),
            });
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS * attempt));
        }
      }
    }
  }
}

/** An AuditStore that also exports what it accepts. */
export class ExportingAuditStore implements AuditStore {
  private readonly queues: SinkQueue[];
  private readonly recent = new Set<string>();

  constructor(
    private readonly inner: AuditStore,
    sinks: AuditSink[],
    log: Logger,
  ) {
    this.queues = sinks.map((sink) => new SinkQueue(sink, log));
  }

  async append(events: AuditEvent[]): Promise<AuditAppendResult> {
    const result = await this.inner.append(events);
    if (result.accepted > 0) {
      const fresh = events.filter((event) => !this.recent.has(event.id));
      for (const event of fresh) this.remember(event.id);
      if (fresh.length > 0) for (const queue of this.queues) queue.push(fresh);
    }
    return result;
  }

  query(filters: AuditQueryFilters, page: { limit: number; cursor?: string }): Promise<AuditPage> {
    return this.inner.query(filters, page);
  }

  count(filters: AuditQueryFilters): Promise<number> {
    return this.inner.count(filters);
  }

  /** Resolves once every sink has sent (or given up on) what was queued. */
  async flushed(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.idle()));
  }

  async close(): Promise<void> {
    await Promise.race([this.flushed(), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    await Promise.all(this.queues.map((queue) => queue.sink.close().catch(() => undefined)));
    await this.inner.close();
  }

  private remember(id: string): void {
    this.recent.add(id);
    if (this.recent.size > RECENT_IDS) this.recent.delete(this.recent.values().next().value!);
  }
}

/** How bad an event is, for both syslog severities and OpenTelemetry severity numbers. */
export function auditSeverity(event: AuditEvent): 'warning' | 'notice' | 'info' {
  if (event.decision === 'allow') return event.status === 'ok' ? 'info' : 'notice';
  if (event.decision === 'confirm-approved') return 'notice';
  return 'warning';
}

/** One line a person reads: who, what, on which server, what was decided and how it ended. */
export function auditSummary(event: AuditEvent): string {
  const subject = event.tool ? `${event.method} ${event.tool}` : event.method;
  return `${event.user} ${subject} on ${event.server}: ${event.decision}${event.reviewer ? ` by ${event.reviewer}` : ''}${event.rule ? ` (rule ${event.rule})` : ''}, ${event.status}`;
}
