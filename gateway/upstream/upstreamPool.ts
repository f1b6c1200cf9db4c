/**
 * Owns how the gateway reaches each configured upstream server: builds the right transport
 * (stdio child, Streamable HTTP, legacy SSE), starts each server when a client first asks
 * for it (`lazy`, the default: twenty approved servers cost nothing until used) or all of
 * them at launch in parallel (`eager`: one slow or broken server delays nobody), hands
 * connections to client sessions, and applies restart backoff to servers that keep failing.
 */
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { LATEST_PROTOCOL_VERSION, type InitializeRequest, type InitializeResult } from '@modelcontextprotocol/sdk/types.js';
import type { ServerConfig } from '../config/gatewayConfig';
import { describeError, type Logger } from '../../common/log/logger';
import { HttpUpstreamTransport } from './httpUpstreamTransport';
import { SignInRequiredError } from './upstreamAuthorization';
import { StdioUpstreamTransport } from './stdioUpstreamTransport';
import { UpstreamConnection, type ProtocolEra } from './upstreamConnection';
import { causedBy, UpstreamBackoffError, UpstreamGoneError } from './upstreamErrors';
import { GATEHOUSE_VERSION } from '../../common/version';

export type InitializeParams = InitializeRequest['params'];

/**
 * The client capabilities a launch-time connection declares: what VS Code declares and the
 * gateway relays. A session whose client declares something else gets its own connection,
 * so the upstream is never told the client supports what it does not.
 */
export const LAUNCH_CLIENT_CAPABILITIES: InitializeParams['capabilities'] = {
  roots: { listChanged: true },
  sampling: {},
  elicitation: { form: {}, url: {} },
};

export const LAUNCH_INITIALIZE_PARAMS: InitializeParams = {
  protocolVersion: LATEST_PROTOCOL_VERSION,
  capabilities: LAUNCH_CLIENT_CAPABILITIES,
  clientInfo: { name: 'gatehouse-gateway', version: GATEHOUSE_VERSION },
};

/** `lazy`: each server starts when a client first asks for it; `eager`: all start at launch. */
export type UpstreamStart = 'lazy' | 'eager';

export interface UpstreamStatus {
  id: string;
  /**
   * `idle`: not started yet (lazy start); it starts when a client first asks for it.
   * `sign-in`: a user-oauth server that will ask the user to sign in when first used.
   */
  state: 'idle' | 'starting' | 'ready' | 'failed' | 'sign-in';
  error?: string;
  startupMs?: number;
  serverInfo?: InitializeResult['serverInfo'];
  /** The MCP version spoken with it once it ran: a 2025 version, or 2026-07-28 (bridged for 2025-era clients). */
  protocolVersion?: string;
}

/** Consecutive failures -> delay before the next start: 0, 0.5 s, 1 s, 2 s, ... capped at 30 s. */
function backoffDelayMs(consecutiveFailures: number): number {
  if (consecutiveFailures <= 1) return 0;
  return Math.min(30_000, 500 * 2 ** (consecutiveFailures - 2));
}

/** How long a stdio server may take to answer `server/discover` before it is taken for a 2025-era one. */
const STDIO_DISCOVER_TIMEOUT_MS = 3_000;

/** A connection that ends within this long of opening counts as a failure for backoff. */
const SHORT_LIVED_MS = 10_000;

class ServerSlot {
  status: UpstreamStatus;
  spare: UpstreamConnection | undefined;
  spareUnsubscribe: (() => void) | undefined;
  consecutiveFailures = 0;
  lastFailureAt = 0;
  /** Learned from its first connection, so later ones skip `server/discover` for a 2025-era server. */
  era: ProtocolEra | undefined;

  constructor(
    public config: ServerConfig,
    start: UpstreamStart,
  ) {
    this.status = { id: config.id, state: start === 'lazy' ? 'idle' : 'starting' };
  }
}

export class UpstreamPool {
  private readonly slots = new Map<string, ServerSlot>();
  private readonly live = new Set<UpstreamConnection>();
  /** Told when a server's state changes after launch (a lazy server starting, ready or failed). */
  onStatusChange: () => void = () => undefined;

  constructor(
    servers: readonly ServerConfig[],
    private readonly initializeTimeoutMs: number,
    private readonly log: Logger,
    private readonly start: UpstreamStart = 'lazy',
  ) {
    for (const server of servers) if (server.enabled) this.slots.set(server.id, new ServerSlot(server, start));
  }

  /**
   * Makes the pool serve exactly `servers` (a new policy's catalog): new ones are added
   * (and, when eager, started), removed ones and ones whose transport changed are closed.
   * Resolves when the new ones are ready or have failed (at once when lazy).
   */
  async reconcile(servers: readonly ServerConfig[]): Promise<void> {
    const wanted = new Map(servers.filter((s) => s.enabled).map((s) => [s.id, s]));
    for (const [id, slot] of this.slots) {
      const next = wanted.get(id);
      if (next && JSON.stringify(next.transport) === JSON.stringify(slot.config.transport)) {
        slot.config = next; // title or description may change without a restart
        wanted.delete(id);
        continue;
      }
      this.slots.delete(id);
      await slot.spare?.close();
      this.log.info('upstream removed from the catalog', { server: id });
    }
    const added = [...wanted.values()].map((server) => {
      const slot = new ServerSlot(server, this.start);
      this.slots.set(server.id, slot);
      return slot;
    });
    if (this.start === 'eager') await Promise.all(added.map((slot) => this.warmUp(slot)));
  }

  has(serverId: string): boolean {
    return this.slots.has(serverId);
  }

  config(serverId: string): ServerConfig | undefined {
    return this.slots.get(serverId)?.config;
  }

  statuses(): UpstreamStatus[] {
    return [...this.slots.values()].map((slot) => slot.status);
  }

  /** Eager: starts every enabled server in parallel and resolves when each is ready or has failed. Lazy: starts none. */
  async startAll(): Promise<UpstreamStatus[]> {
    if (this.start === 'eager') await Promise.all([...this.slots.values()].map((slot) => this.warmUp(slot)));
    return this.statuses();
  }

  private async warmUp(slot: ServerSlot): Promise<void> {
    const started = performance.now();
    try {
      const connection = await this.open(slot, LAUNCH_INITIALIZE_PARAMS, false);
      if (this.slots.get(slot.config.id) !== slot) {
        await connection.close(); // removed from the catalog while it was starting
        return;
      }
      slot.spare = connection;
      slot.status = {
        id: slot.config.id,
        state: 'ready',
        startupMs: round(performance.now() - started),
        serverInfo: connection.initialized?.serverInfo,
        ...spokenVersion(connection),
      };
      slot.spareUnsubscribe = connection.whenGone(() => {
        if (slot.spare === connection) slot.spare = undefined;
      });
    } catch (error) {
      if (causedBy(error, SignInRequiredError)) {
        // Not a failure: the first request from a client will ask the user to sign in.
        slot.consecutiveFailures = 0;
        slot.status = {
          id: slot.config.id,
          state: 'sign-in',
          error: causedBy(error, SignInRequiredError)!.message,
          startupMs: round(performance.now() - started),
        };
        this.log.info('upstream waits for the user to sign in', { server: slot.config.id });
        return;
      }
      slot.status = { id: slot.config.id, state: 'failed', error: describeError(error), startupMs: round(performance.now() - started) };
      this.log.error('upstream failed to start', { server: slot.config.id, error: slot.status.error });
    }
  }

  /**
   * A connection for a new client session (or a restart after the upstream died). The
   * launch-time connection is reused when the client asked for exactly what it declared.
   */
  async acquire(serverId: string, params: InitializeParams): Promise<UpstreamConnection> {
    const slot = this.slots.get(serverId);
    if (!slot) throw new UpstreamGoneError(serverId, 'not configured');
    const spare = slot.spare;
    if (spare && !spare.isGone && sameHandshake(params, LAUNCH_INITIALIZE_PARAMS)) {
      slot.spare = undefined;
      slot.spareUnsubscribe?.();
      return spare;
    }
    const wait = slot.lastFailureAt + backoffDelayMs(slot.consecutiveFailures) - Date.now();
    if (wait > 0) {
      throw new UpstreamBackoffError(serverId, slot.consecutiveFailures, wait, slot.status.error);
    }
    if (slot.status.state === 'ready') return this.open(slot, params);
    return this.openTold(slot, params);
  }

  /**
   * Opens a connection for a server not known to work yet (a lazy server's first start, or
   * one that failed or waits for sign-in) and tells its state as it goes: starting, then
   * ready or failed.
   */
  private async openTold(slot: ServerSlot, params: InitializeParams): Promise<UpstreamConnection> {
    const started = performance.now();
    const before = slot.status;
    const id = slot.config.id;
    if (before.state === 'idle') this.setStatus(slot, { id, state: 'starting' });
    try {
      const connection = await this.open(slot, params);
      const startupMs = round(performance.now() - started);
      this.setStatus(slot, { id, state: 'ready', startupMs, serverInfo: connection.initialized?.serverInfo, ...spokenVersion(connection) });
      return connection;
    } catch (error) {
      // Declining a sign-in is the user's choice, not a broken server: the next client asks again.
      if (causedBy(error, SignInRequiredError)) this.setStatus(slot, before.state === 'sign-in' ? before : { id, state: 'idle' });
      else this.setStatus(slot, { id, state: 'failed', error: describeError(error), startupMs: round(performance.now() - started) });
      throw error;
    }
  }

  private setStatus(slot: ServerSlot, status: UpstreamStatus): void {
    if (this.slots.get(slot.config.id) !== slot) return; // removed from the catalog meanwhile
    slot.status = status;
    try {
      this.onStatusChange();
    } catch (error) {
      this.log.warn('status listener failed', { error: describeError(error) });
    }
  }

  /** Called by sessions when their connection ends, so repeated crashes back off. */
  reportGone(serverId: string, connection: UpstreamConnection, reason: string): void {
    const slot = this.slots.get(serverId);
    if (!slot) return;
    if (Date.now() - connection.openedAt < SHORT_LIVED_MS) {
      slot.consecutiveFailures++;
      slot.lastFailureAt = Date.now();
    } else {
      slot.consecutiveFailures = 0;
    }
    slot.status = { ...slot.status, error: reason };
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.live].map((connection) => connection.close()));
  }

  /** `interactive`: whether the upstream's sign-in may ask the user (a client asked; not at launch). */
  private async open(slot: ServerSlot, params: InitializeParams, interactive = true): Promise<UpstreamConnection> {
    const log = this.log.child({ server: slot.config.id });
    const { transport, describeClose } = createTransport(slot.config, log, interactive);
    const connection = new UpstreamConnection(slot.config.id, transport, describeClose);
    if (slot.config.transport.type !== 'stdio') {
      // HTTP transports report a dropped stream as an error, not a close; a request waiting
      // on that stream would otherwise wait forever.
      transport.onerror = (error) => {
        log.warn('upstream transport error', { error: describeError(error) });
        if (isFatalHttpError(error)) connection.fail(describeError(error));
      };
    }
    this.live.add(connection);
    connection.whenGone(() => this.live.delete(connection));
    try {
      // A handshake that waits for the user to sign in gets the sign-in's time, not a handshake's.
      const flowTimeoutMs = interactive ? slot.config.authorization?.flowTimeoutMs : undefined;
      const timeoutMs = Math.max(this.initializeTimeoutMs, flowTimeoutMs ?? 0);
      // Through the policy server's relay the protocol is the 2025 one (the relay keeps sessions).
      const era = slot.config.viaRelay ? 'legacy' : slot.era;
      const discoverTimeoutMs = slot.config.transport.type === 'stdio' ? STDIO_DISCOVER_TIMEOUT_MS : timeoutMs;
      await connection.open(params, timeoutMs, { ...(era ? { era } : {}), discoverTimeoutMs });
      slot.era = connection.era;
      log.info('upstream connected', {
        serverInfo: connection.initialized?.serverInfo,
        protocolVersion: connection.upstreamProtocolVersion,
        era: connection.era,
      });
      return connection;
    } catch (error) {
      this.live.delete(connection);
      slot.consecutiveFailures++;
      slot.lastFailureAt = Date.now();
      throw error;
    }
  }
}

function createTransport(config: ServerConfig, log: Logger, interactive: boolean): { transport: Transport; describeClose: () => string } {
  const t = config.transport;
  switch (t.type) {
    case 'stdio': {
      const transport = new StdioUpstreamTransport(t, log);
      transport.onerror = (error) => log.warn('upstream stdio error', { error: describeError(error) });
      return { transport, describeClose: () => transport.exit?.message ?? 'process ended' };
    }
    case 'streamable-http': {
      const transport = new HttpUpstreamTransport(new URL(t.url), undefined, config.authorization, interactive);
      return { transport, describeClose: () => 'the upstream ended the HTTP session' };
    }
    case 'sse': {
      const transport = new SSEClientTransport(new URL(t.url));
      return { transport, describeClose: () => 'SSE connection closed' };
    }
  }
}

/** Errors after which the HTTP connection cannot deliver pending answers. */
function isFatalHttpError(error: Error): boolean {
  return /SSE stream disconnected|fetch failed|ECONNREFUSED|ECONNRESET|socket hang up|terminated|other side closed/i.test(error.message);
}

function sameHandshake(a: InitializeParams, b: InitializeParams): boolean {
  return a.protocolVersion === b.protocolVersion && canonical(a.capabilities) === canonical(b.capabilities);
}

/** Key-sorted JSON, only used to compare two small capability objects. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => x.localeCompare(y)))
      : v,
  );
}

function spokenVersion(connection: UpstreamConnection): { protocolVersion?: string } {
  const version = connection.upstreamProtocolVersion;
  return version ? { protocolVersion: version } : {};
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
