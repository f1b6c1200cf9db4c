/**
 * One live MCP connection from the gateway to one upstream server, over any SDK transport.
 * It finds the server's protocol era (modernProtocol.ts: `server/discover` first, then the
 * 2025-era `initialize` handshake), numbers the requests it sends (so client ids never
 * reach the upstream and cannot collide), sends them to a modern server in the modern form
 * and hands their answers back in the 2025 form, and turns the transport ending into one
 * `UpstreamGoneError` for every request still waiting.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  InitializeResultSchema,
  type InitializeRequest,
  type InitializeResult,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type JSONRPCResponse,
  type JSONRPCErrorResponse,
  type MessageExtraInfo,
  type RequestId,
  type ServerCapabilities,
} from '@modelcontextprotocol/sdk/types.js';
import { describeError } from '../../common/log/logger';
import {
  isModernDiscovery,
  legacyResult,
  MODERN_PROTOCOL_VERSION,
  SERVER_INFO_META,
  withModernMeta,
  withoutModernMeta,
  type ModernEnvelope,
} from './modernProtocol';
import { InputRounds, type InputRequired, type RoundCall, type RoundOutcome } from './inputRounds';
import { UpstreamAuthorizationFailedError } from './upstreamAuthorization';
import { BRIDGED_METHODS, SessionBridge } from './sessionBridge';
import { causedBy, UpstreamGoneError } from './upstreamErrors';
import { ListCache } from './listCache';

/** `legacy`: 2025-era, with `initialize` and a session; `modern`: 2026-07-28, stateless. */
export type ProtocolEra = 'legacy' | 'modern';

/**
 * How the era is found: known already (`era`), or by `server/discover` within
 * `discoverTimeoutMs` (short for stdio, where a 2025-era server may never answer a request
 * it does not know before `initialize`; the whole handshake's time over HTTP, where every
 * POST gets an answer and a sign-in may come first).
 */
export interface EraProbe {
  era?: ProtocolEra;
  discoverTimeoutMs: number;
}

export type UpstreamReply = JSONRPCResponse | JSONRPCErrorResponse;

interface Waiting {
  resolve(reply: UpstreamReply): void;
  reject(error: Error): void;
  /** To a modern server: what to send again when it answers `input_required`. */
  call?: RoundCall;
  /** For a 2026-07-28 client: the answer goes back as the upstream gave it. */
  asIs?: boolean;
}

export class UpstreamConnection {
  /**
   * Requests and notifications the upstream sends to its client. Set by the owning session.
   * `related`: over HTTP, the request whose stream a server request came on (null: no
   * request's); undefined where the transport cannot tell (stdio).
   */
  onServerRequest?: (request: JSONRPCRequest, related: RequestId | null | undefined) => void;
  onServerNotification?: (notification: JSONRPCNotification) => void;

  readonly openedAt = Date.now();
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private gone: UpstreamGoneError | undefined;
  private initializeResult: InitializeResult | undefined;
  /** Set once a modern server was found: what each request carries in `_meta`. */
  private modern: ModernEnvelope | undefined;
  /** For a modern server: what a 2025-era client's session needs that the server no longer offers (sessionBridge.ts). */
  private bridge: SessionBridge | undefined;
  /** For a modern server: its lists, kept for the `ttlMs` it gave (listCache.ts). */
  private readonly cache = new ListCache();
  /** Modern calls waiting for the client's input (by the call's first upstream id), and the ids their retries went under. */
  private readonly rounds = new InputRounds(
    (request) => {
      if (!this.onServerRequest) return false;
      this.onServerRequest(request, undefined); // the gateway's own question, on no stream
      return true;
    },
    (callId, outcome) => this.endRound(callId, outcome),
  );
  private readonly inRound = new Map<number, Waiting>();
  private readonly retryOf = new Map<number, number>();
  private readonly retriedAs = new Map<number, number>();
  private readonly goneListeners = new Set<(error: UpstreamGoneError) => void>();

  constructor(
    readonly serverId: string,
    private readonly transport: Transport,
    /** Explains an unexpected close (e.g. the process exit code) in error messages. */
    private readonly describeClose: () => string = () => 'connection closed',
  ) {
    // Our HTTP transport says which request's stream a message came on (`relatedRequestId`).
    transport.onmessage = (message, extra?: MessageExtraInfo) =>
      this.onMessage(message, (extra as { relatedRequestId?: RequestId | null } | undefined)?.relatedRequestId);
    transport.onclose = () => this.markGone(this.describeClose());
  }

  /** Runs `listener` once when the connection ends (at once if it already has); returns an unsubscribe. */
  whenGone(listener: (error: UpstreamGoneError) => void): () => void {
    if (this.gone) {
      listener(this.gone);
      return () => undefined;
    }
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  get isGone(): boolean {
    return this.gone !== undefined;
  }

  /** For a modern server, what `initialize` would have said: the client's version, the discovered capabilities. */
  get initialized(): InitializeResult | undefined {
    return this.initializeResult;
  }

  get era(): ProtocolEra {
    return this.modern ? 'modern' : 'legacy';
  }

  /** The protocol version spoken upstream (not the one the client was told). */
  get upstreamProtocolVersion(): string | undefined {
    return this.modern ? MODERN_PROTOCOL_VERSION : this.initializeResult?.protocolVersion;
  }

  /**
   * Starts the transport and finds the server's era within `timeoutMs`: `server/discover`
   * (unless `era` says the server is known to be 2025-era), then the 2025 handshake when
   * the server did not answer it as a modern server.
   */
  async open(
    params: InitializeRequest['params'],
    timeoutMs: number,
    probe: EraProbe = { discoverTimeoutMs: timeoutMs },
  ): Promise<InitializeResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UpstreamGoneError(this.serverId, `no answer to initialize within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const handshake = (async () => {
        await this.transport.start();
        if (probe.era !== 'legacy') {
          const discovered = await this.discover(params, Math.min(timeoutMs, probe.discoverTimeoutMs));
          if (discovered) return discovered;
        }
        const { reply } = this.request({ method: 'initialize', params });
        const answer = await reply;
        if (isJSONRPCErrorResponse(answer)) {
          throw new UpstreamGoneError(this.serverId, `initialize failed: ${answer.error.message}`);
        }
        const parsed = InitializeResultSchema.safeParse(answer.result);
        if (!parsed.success) throw new UpstreamGoneError(this.serverId, 'initialize returned an invalid result');
        this.transport.setProtocolVersion?.(parsed.data.protocolVersion);
        await this.transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
        return parsed.data;
      })();
      this.initializeResult = await Promise.race([handshake, timeout]);
      return this.initializeResult;
    } catch (error) {
      await this.close();
      throw error instanceof UpstreamGoneError ? error : new UpstreamGoneError(this.serverId, describeError(error), { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Asks `server/discover` as a modern client would. A modern answer makes this a modern
   * connection and returns what the 2025 handshake would have; anything else (an error, a
   * refusal, no answer in time) returns undefined, and the 2025 handshake follows.
   */
  private async discover(params: InitializeRequest['params'], timeoutMs: number): Promise<InitializeResult | undefined> {
    const envelope: ModernEnvelope = { clientCapabilities: params.capabilities, clientInfo: params.clientInfo };
    const { upstreamId, reply } = this.send('server/discover', withModernMeta(undefined, envelope));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answer = await Promise.race([
      reply.catch((error: unknown) => {
        // Refused for its credentials: `initialize` would be too (and would ask the user again).
        if (causedBy(error, UpstreamAuthorizationFailedError)) throw error;
        return undefined;
      }),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    this.abandon(upstreamId);
    if (!answer || !isJSONRPCResultResponse(answer) || !isModernDiscovery(answer.result)) return undefined;
    this.modern = envelope;
    const found = answer.result;
    this.bridge = new SessionBridge(envelope, found.capabilities as ServerCapabilities, {
      listen: (params) => this.send('subscriptions/listen', withModernMeta(params, envelope), true),
      stop: (upstreamId) => this.endStream(upstreamId),
      alive: () => !this.gone,
    });
    const serverInfo = found._meta?.[SERVER_INFO_META] as InitializeResult['serverInfo'] | undefined;
    return {
      protocolVersion: params.protocolVersion,
      capabilities: found.capabilities,
      serverInfo: serverInfo && typeof serverInfo.name === 'string' ? serverInfo : { name: this.serverId, version: 'unknown' },
      ...(typeof found.instructions === 'string' ? { instructions: found.instructions } : {}),
    };
  }

  /** Sends a request upstream under a fresh id (in the modern form to a modern server); `reply` settles with the upstream's answer. */
  request(call: { method: string; params?: JSONRPCRequest['params'] }): { upstreamId: number; reply: Promise<UpstreamReply> } {
    if (this.bridge && BRIDGED_METHODS.has(call.method)) return this.answered(this.bridge.answer(call.method, call.params));
    const cached = this.modern ? this.cache.get(call.method, call.params) : undefined;
    if (cached) return this.answered({ result: cached });
    return this.send(call.method, this.modern ? withModernMeta(call.params, this.modern) : call.params);
  }

  /** An answer the gateway gives itself (the session bridge, the list cache), under a fresh id like any other. */
  private answered(answer: { result: Record<string, unknown> } | { error: { code: number; message: string } }): {
    upstreamId: number;
    reply: Promise<UpstreamReply>;
  } {
    const upstreamId = this.nextId++;
    if (this.gone) return { upstreamId, reply: Promise.reject(this.gone) };
    return { upstreamId, reply: Promise.resolve({ jsonrpc: '2.0', id: upstreamId, ...answer } as UpstreamReply) };
  }

  /**
   * For a 2026-07-28 client, which answers `input_required` results itself: its request
   * under a fresh id, to a modern server with `envelope` (the client's own) in `_meta`, to
   * a 2025-era server without the modern `_meta` keys; the answer comes back unmapped.
   */
  requestAsIs(
    call: { method: string; params?: JSONRPCRequest['params'] },
    envelope: ModernEnvelope,
  ): {
    upstreamId: number;
    reply: Promise<UpstreamReply>;
  } {
    return this.send(call.method, this.modern ? withModernMeta(call.params, envelope) : withoutModernMeta(call.params), true);
  }

  private send(method: string, params: JSONRPCRequest['params'], asIs = false): { upstreamId: number; reply: Promise<UpstreamReply> } {
    const upstreamId = this.nextId++;
    if (this.gone) return { upstreamId, reply: Promise.reject(this.gone) };
    const call = this.modern && params && !asIs ? { method, params, rounds: 0 } : undefined;
    const reply = new Promise<UpstreamReply>((resolve, reject) =>
      this.waiting.set(upstreamId, { resolve, reject, ...(call ? { call } : {}), ...(asIs ? { asIs } : {}) }),
    );
    const message: JSONRPCRequest =
      params === undefined ? { jsonrpc: '2.0', id: upstreamId, method } : { jsonrpc: '2.0', id: upstreamId, method, params };
    this.transport.send(message).catch((error: unknown) => this.failOne(upstreamId, error));
    return { upstreamId, reply };
  }

  /**
   * For a 2025-era client's session on a modern server: list changes (and the resources it
   * subscribes to) start to arrive as notifications, over a `subscriptions/listen` stream.
   */
  followChanges(): void {
    if (!this.gone) this.bridge?.follow();
  }

  /** Forgets a request and ends its HTTP exchange, for a stream nobody reads any more (a listen stream). */
  endStream(upstreamId: number): void {
    this.waiting.delete(upstreamId);
    const cancellable = this.transport as Transport & { cancel?: (id: RequestId) => void };
    if (cancellable.cancel) return cancellable.cancel(upstreamId); // HTTP: the request's own exchange ends
    // Over stdio a 2026-07-28 server hears it as a cancellation of that request.
    if (this.modern && !this.gone) {
      const params = withModernMeta({ requestId: upstreamId }, this.modern);
      this.transport.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params }).catch(() => undefined);
    }
  }

  /** Forgets a request the client cancelled; any late answer is dropped. */
  abandon(upstreamId: number): void {
    this.waiting.delete(upstreamId);
    const retry = this.retriedAs.get(upstreamId);
    if (retry !== undefined) {
      this.waiting.delete(retry);
      this.retryOf.delete(retry);
      this.retriedAs.delete(upstreamId);
    }
    this.inRound.delete(upstreamId);
    this.rounds.drop(upstreamId);
    // A 2026-07-28 request is cancelled by ending its exchange: the server sees its client go.
    if (this.modern) this.endStream(retry ?? upstreamId);
  }

  /** A client notification for the upstream; a modern server has no session to notify, so it gets none (see `abandon`). */
  notify(notification: JSONRPCNotification): void {
    if (this.gone || this.modern) return;
    this.transport.send(notification).catch(() => {
      /* a notification to a gone upstream has nobody to reach */
    });
  }

  /** Answers a request the upstream sent to its client. */
  respond(id: RequestId, answer: { result: Record<string, unknown> } | { error: JSONRPCErrorResponse['error'] }): void {
    if (this.gone) return;
    if (this.modern && this.rounds.answer(id, answer)) return; // an input request of a modern call, not the server's own
    const message = (
      'result' in answer ? { jsonrpc: '2.0', id, result: answer.result } : { jsonrpc: '2.0', id, error: answer.error }
    ) as JSONRPCMessage;
    this.transport.send(message).catch(() => {
      /* the upstream's own request is lost with it */
    });
  }

  async close(): Promise<void> {
    this.markGone('closed by the gateway');
    await this.transport.close().catch(() => undefined);
  }

  /** Treats the connection as dead (used when a transport reports a fatal error without closing). */
  fail(reason: string): void {
    this.markGone(reason);
    void this.transport.close().catch(() => undefined);
  }

  private onMessage(message: JSONRPCMessage, related: RequestId | null | undefined): void {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      const id = message.id;
      const entry = typeof id === 'number' ? this.waiting.get(id) : undefined;
      if (!entry) return; // abandoned or unknown: nothing waits for it
      this.waiting.delete(id as number);
      if (this.modern && !entry.asIs) return this.onModernReply(id as number, entry, message);
      entry.resolve(message);
    } else if (isJSONRPCRequest(message)) {
      this.onServerRequest?.(message, related);
    } else if (isJSONRPCNotification(message)) {
      if (this.modern) this.cache.changed(message);
      const relayed = this.bridge ? this.bridge.relayed(message) : message;
      if (relayed) this.onServerNotification?.(relayed);
    }
  }

  /** A modern server's answer: in the 2025 form, or (for `input_required`) a round of questions to the client first. */
  private onModernReply(upstreamId: number, entry: Waiting, reply: UpstreamReply): void {
    const callId = this.retryOf.get(upstreamId) ?? upstreamId;
    this.retryOf.delete(upstreamId);
    this.retriedAs.delete(callId);
    const result = isJSONRPCResultResponse(reply) ? (reply.result as Record<string, unknown>) : undefined;
    if (result?.resultType === 'input_required' && entry.call) {
      this.inRound.set(callId, entry);
      return this.rounds.start(callId, entry.call, result as InputRequired);
    }
    if (!result) return entry.resolve({ ...reply, id: callId });
    const answer = legacyResult(result);
    if (entry.call) this.cache.put(entry.call.method, entry.call.params, result, answer);
    entry.resolve({ jsonrpc: '2.0', id: callId, result: answer } as UpstreamReply);
  }

  /** A round of input ended: the call goes again with the answers, or ends with the error. */
  private endRound(callId: number, outcome: RoundOutcome): void {
    const entry = this.inRound.get(callId);
    if (!entry) return;
    this.inRound.delete(callId);
    if ('error' in outcome) return entry.resolve({ jsonrpc: '2.0', id: callId, error: outcome.error });
    const retryId = this.nextId++;
    this.waiting.set(retryId, { ...entry, call: outcome.retry });
    this.retryOf.set(retryId, callId);
    this.retriedAs.set(callId, retryId);
    const message: JSONRPCRequest = { jsonrpc: '2.0', id: retryId, method: outcome.retry.method, params: outcome.retry.params };
    this.transport.send(message).catch((error: unknown) => this.failOne(retryId, error));
  }

  private failOne(upstreamId: number, error: unknown): void {
    const entry = this.waiting.get(upstreamId);
    if (!entry) return;
    this.waiting.delete(upstreamId);
    entry.reject(new UpstreamGoneError(this.serverId, describeError(error), { cause: error }));
  }

  private markGone(reason: string): void {
    if (this.gone) return;
    this.gone = new UpstreamGoneError(this.serverId, reason);
    const waiting = [...this.waiting.values(), ...this.inRound.values()];
    this.waiting.clear();
    this.inRound.clear();
    for (const entry of waiting) entry.reject(this.gone);
    const listeners = [...this.goneListeners];
    this.goneListeners.clear();
    for (const listener of listeners) listener(this.gone);
  }
}
