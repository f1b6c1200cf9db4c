/**
 * Push events across replicas. Every replica holds the event streams of the gateways
 * connected to it (PolicyEventHub); a publish or a revocation made on one replica must
 * reach the gateways on all of them. `EventFanout` is what the rest of the server calls:
 * one replica alone uses its hub directly; with the PostgreSQL store, `PostgresEventFanout`
 * tells its own hub at once (so the count of streams told stays exact for this replica)
 * and the others by `NOTIFY gatehouse_events`, which each replica `LISTEN`s to on a
 * dedicated connection (reconnecting after a failover). Not an in-process bus: replicas
 * share nothing but the database.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describeError, type Logger } from '../../common/log/logger';
import type { PolicyEventHub } from './policyEventHub';

export interface EventFanout {
  publishedVersion(version: number): void;
  /** Returns how many streams on this replica were told. */
  revoked(sub: string, sessionId: string | undefined): number;
  credentialRevoked(sub: string, serverId: string): number;
}

type ClusterEvent =
  | { type: 'policy'; version: number }
  | { type: 'revoked'; sub: string; sessionId?: string }
  | { type: 'credential-revoked'; sub: string; serverId: string }
  | { type: 'review-decided'; id: string };

const CHANNEL = 'gatehouse_events';
const RECONNECT_MS = 1_000;

export class PostgresEventFanout implements EventFanout {
  /** This replica's id: its own notifications come back to it and are skipped. */
  private readonly origin = randomUUID();
  private listener: pg.Client | undefined;
  private closed = false;
  private reviewDecidedHere: (id: string) => void = () => undefined;

  private constructor(
    private readonly hub: PolicyEventHub,
    private readonly pool: pg.Pool,
    private readonly connect: () => pg.Client,
    private readonly log: Logger,
    /** Called before another replica's event is applied here: cached reads must be dropped first. */
    private readonly changedElsewhere: () => void,
  ) {}

  /** Starts listening; resolves once the first LISTEN is in place. */
  static async start(
    hub: PolicyEventHub,
    pool: pg.Pool,
    connect: () => pg.Client,
    log: Logger,
    changedElsewhere: () => void = () => undefined,
  ): Promise<PostgresEventFanout> {
    const fanout = new PostgresEventFanout(hub, pool, connect, log, changedElsewhere);
    await fanout.listen();
    return fanout;
  }

  publishedVersion(version: number): void {
    this.hub.publishedVersion(version);
    this.notify({ type: 'policy', version });
  }

  revoked(sub: string, sessionId: string | undefined): number {
    const told = this.hub.revoked(sub, sessionId);
    this.notify({ type: 'revoked', sub, ...(sessionId !== undefined ? { sessionId } : {}) });
    return told;
  }

  credentialRevoked(sub: string, serverId: string): number {
    const told = this.hub.credentialRevoked(sub, serverId);
    this.notify({ type: 'credential-revoked', sub, serverId });
    return told;
  }

  /** Tells the other replicas a review was decided, so gateways long-polling them hear it now. */
  reviewDecided(id: string): void {
    this.notify({ type: 'review-decided', id });
  }

  /** Where another replica's `review-decided` goes (the review queue's long-polls). */
  onReviewDecided(handler: (id: string) => void): void {
    this.reviewDecidedHere = handler;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.listener?.end().catch(() => undefined);
  }

  private notify(event: ClusterEvent): void {
    this.pool
      .query('select pg_notify($1, $2)', [CHANNEL, JSON.stringify({ origin: this.origin, event })])
      .catch((error: unknown) => this.log.error('could not tell the other replicas', { event: event.type, error: describeError(error) }));
  }

  private async listen(): Promise<void> {
    const client = this.connect();
    client.on('notification', (message) => this.received(message.payload));
    client.on('error', (error) => {
      this.log.warn('lost the event connection to PostgreSQL; reconnecting', { error: describeError(error) });
      void client.end().catch(() => undefined);
    });
    client.on('end', () => {
      if (this.listener === client) {
        this.listener = undefined;
        this.reconnectLater();
      }
    });
    try {
      await client.connect();
      await client.query(`listen ${CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.listener = client;
  }

  /** Tries again every second until LISTEN is back (events sent meanwhile are missed; caches expire within 1 s anyway). */
  private reconnectLater(): void {
    if (this.closed) return;
    setTimeout(() => {
      void this.listen().catch((error: unknown) => {
        this.log.warn('reconnecting the event connection failed; trying again', { error: describeError(error) });
        this.reconnectLater();
      });
    }, RECONNECT_MS).unref();
  }

  private received(payload: string | undefined): void {
    let parsed: { origin?: unknown; event?: ClusterEvent };
    try {
      parsed = JSON.parse(payload ?? '') as typeof parsed;
    } catch {
      return;
    }
    const event = parsed.event;
    if (parsed.origin === this.origin || !event) return;
    this.changedElsewhere();
    if (event.type === 'policy' && Number.isInteger(event.version)) this.hub.publishedVersion(event.version);
    else if (event.type === 'revoked' && typeof event.sub === 'string')
      this.hub.revoked(event.sub, typeof event.sessionId === 'string' ? event.sessionId : undefined);
    else if (event.type === 'credential-revoked' && typeof event.sub === 'string' && typeof event.serverId === 'string')
      this.hub.credentialRevoked(event.sub, event.serverId);
    else if (event.type === 'review-decided' && typeof event.id === 'string') this.reviewDecidedHere(event.id);
  }
}
