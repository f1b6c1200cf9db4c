/**
 * One MCP session of one client (VS Code, a test, the Inspector) on one configured server.
 * It terminates the client's protocol and relays it to its own upstream connection:
 * requests get fresh upstream ids, answers and notifications find their way back to the
 * right client stream, server-to-client requests pass only when the client declared the
 * capability, cancellations travel upstream, and a dead upstream becomes a JSON-RPC error
 * naming the server and is restarted on the next request.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  InitializeRequestSchema,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  type ClientCapabilities,
  type InitializeResult,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { ServerConfig } from '../config/gatewayConfig';
import type { CallAuditor } from '../audit/callAuditor';
import type { SecretRedactor } from '../guardrails/redaction/secretRedactor';
import type { ToolSummary } from '../../common/control/controlProtocol';
import { ToolListing } from './toolListing';
import type { ToolGuard } from '../guardrails/toolGuard';
import { POLICY_DENIED, type CallGate } from '../policy/callGate';
import type { CallConfirmations } from '../confirmation/callConfirmations';
import { describeError, type Logger } from '../../common/log/logger';
import type { UpstreamConnection, UpstreamReply } from '../upstream/upstreamConnection';
import { MODERN_PROTOCOL_VERSION } from '../upstream/modernProtocol';
import {
  catalogServerInfo,
  RELAYED_CLIENT_METHODS,
  RELAYED_SERVER_NOTIFICATIONS,
  RELAYED_SERVER_REQUESTS,
  UNRELATED_NOTIFICATIONS,
  relayedClientCapabilities,
  relayedServerCapabilities,
  upstreamErrorText,
} from './relayRules';
import type { InitializeParams, UpstreamPool } from '../upstream/upstreamPool';
import { CallPipeline, type Forwarded } from '../call/callPipeline';
import type { ClientAnswer } from '../call/governedCall';

/** What every session of the gateway shares: built once in the composition root. */
export interface SessionDeps {
  pool: UpstreamPool;
  gate: CallGate;
  tools: ToolGuard;
  auditor: CallAuditor;
  confirmations: CallConfirmations;
  /** The redactor for a server: secrets always, personal data when its config asks. */
  redactorFor: (server: ServerConfig) => SecretRedactor;
  /** Hears each server's tools as listed (for the extension's sidebar). */
  toolsListed?: (serverId: string, tools: ToolSummary[]) => void;
}

interface InFlight {
  upstreamId: number;
  connection: UpstreamConnection;
  progressToken?: string | number;
}

export class ClientSession {
  private connection: UpstreamConnection | undefined;
  private reconnecting: Promise<UpstreamConnection> | undefined;
  private upstreamParams: InitializeParams | undefined;
  private clientCapabilities: ClientCapabilities = {};
  private clientInfo = { name: 'unknown', version: 'unknown' };
  private readonly pipeline: CallPipeline;
  /** Client request id -> the upstream request it became. Insertion order = age. */
  private readonly inFlight = new Map<RequestId, InFlight>();
  private readonly byProgressToken = new Map<string | number, RequestId>();
  /** Ids the gateway gave to server-to-client requests -> the upstream's own id. */
  private readonly serverRequests = new Map<string, { upstreamId: RequestId; connection: UpstreamConnection }>();
  /** Client requests relayed and not answered yet (answered at once if the session ends). */
  private readonly unanswered = new Set<RequestId>();
  /** Set when the session was ended (policy expired, access revoked): every request gets this refusal. */
  private endedWith: string | undefined;
  /** Client requests waiting for a reviewer -> how to tell their pipeline the client cancelled (ends the wait). */
  private readonly cancellers = new Map<RequestId, AbortController>();
  private nextServerRequestId = 1;
  private closed = false;

  private readonly pool: UpstreamPool;

  constructor(
    private readonly server: ServerConfig,
    private readonly client: Transport,
    private readonly deps: SessionDeps,
    private readonly log: Logger,
  ) {
    this.pool = deps.pool;
    const listing = ToolListing.forServer(server, deps.gate, deps.tools, log, deps.toolsListed);
    this.pipeline = new CallPipeline(server, {
      ...deps,
      redactor: deps.redactorFor(server),
      listing,
      log,
      respond: (request, answer) => this.answer(request.id, answer),
    });
  }

  get serverId(): string {
    return this.server.id;
  }

  /** Tells the client to list again, e.g. after a policy change. */
  notifyListsChanged(): void {
    for (const method of [
      'notifications/tools/list_changed',
      'notifications/resources/list_changed',
      'notifications/prompts/list_changed',
    ]) {
      void this.send({ jsonrpc: '2.0', method }, undefined);
    }
  }

  /** Entry point for every message the client transport delivers. */
  handleClientMessage(message: JSONRPCMessage): void {
    if (isJSONRPCRequest(message)) {
      if (message.method === 'initialize') void this.initialize(message);
      else void this.relayRequest(message);
    } else if (isJSONRPCNotification(message)) {
      this.relayClientNotification(message);
    } else if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      this.relayClientAnswer(message);
    }
  }

  /**
   * Answers every request still open with `message` (as a policy refusal), so a client
   * whose session is about to end (policy expired or changed, access revoked) is told why
   * instead of waiting for an answer that will never come.
   */
  async refuseOpenRequests(message: string): Promise<void> {
    this.endedWith = message;
    for (const [, entry] of this.inFlight) entry.connection.abandon(entry.upstreamId);
    this.inFlight.clear();
    this.byProgressToken.clear();
    for (const [, cancel] of this.cancellers) cancel.abort(); // a reviewer's wait ends without an answer of its own
    // Every request not answered yet, wherever it is (checks, audit, upstream): answered now, once.
    const open = [...this.unanswered];
    await Promise.all(open.map((id) => this.send({ jsonrpc: '2.0', id, error: { code: POLICY_DENIED, message } }, id)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    await connection?.close();
  }

  private async initialize(request: JSONRPCRequest): Promise<void> {
    const parsed = InitializeRequestSchema.safeParse({ method: request.method, params: request.params });
    if (!parsed.success) {
      return this.replyError(request.id, ErrorCode.InvalidParams, 'initialize: invalid params');
    }
    const refusal = this.deps.gate.serverRefusal(this.server.id);
    if (refusal) return this.replyError(request.id, POLICY_DENIED, refusal);
    const params = parsed.data.params;
    this.clientCapabilities = params.capabilities;
    this.clientInfo = { name: params.clientInfo.name, version: params.clientInfo.version };
    this.upstreamParams = {
      protocolVersion: SUPPORTED_PROTOCOL_VERSIONS.includes(params.protocolVersion) ? params.protocolVersion : LATEST_PROTOCOL_VERSION,
      capabilities: relayedClientCapabilities(params.capabilities),
      clientInfo: params.clientInfo,
    };
    try {
      const connection = await this.pool.acquire(this.server.id, this.upstreamParams);
      this.adopt(connection);
      const upstream = connection.initialized!;
      const result: InitializeResult = {
        protocolVersion: upstream.protocolVersion,
        capabilities: relayedServerCapabilities(upstream.capabilities),
        // VS Code names tools after serverInfo.name, so it must be the stable catalog id.
        serverInfo: catalogServerInfo(this.server, upstream.serverInfo),
        ...(upstream.instructions !== undefined ? { instructions: upstream.instructions } : {}),
      };
      this.client.setProtocolVersion?.(upstream.protocolVersion);
      await this.send({ jsonrpc: '2.0', id: request.id, result }, request.id);
    } catch (error) {
      this.log.warn('initialize failed', { error: describeError(error) });
      this.replyError(request.id, ErrorCode.InternalError, upstreamErrorText(this.server.id, error, 'initialize'));
    }
  }

  private async relayRequest(request: JSONRPCRequest): Promise<void> {
    if (this.endedWith !== undefined) return this.replyError(request.id, POLICY_DENIED, this.endedWith);
    this.unanswered.add(request.id);
    if (!RELAYED_CLIENT_METHODS.has(request.method)) {
      return this.replyError(request.id, ErrorCode.MethodNotFound, `Method not found: ${request.method} is not relayed by Gatehouse`);
    }
    if (!this.upstreamParams) {
      return this.replyError(request.id, ErrorCode.InvalidRequest, 'Session not initialized');
    }
    const call = this.pipeline.begin(request, this.clientInfo);
    // The audit says when a call crossed the bridge to a 2026-07-28 server.
    if (this.connection?.era === 'modern') call.flags.push(`upstream-mcp:${MODERN_PROTOCOL_VERSION}`);
    // Only a call that waits for a reviewer needs to hear of a cancellation: its controller is made then.
    const cancellation = () => {
      const cancel = new AbortController();
      this.cancellers.set(request.id, cancel);
      return cancel.signal;
    };
    try {
      await call.complete(await this.pipeline.run(call, (amended) => this.forward(request.id, amended), cancellation));
    } finally {
      this.cancellers.delete(request.id);
    }
  }

  /** The pipeline's forward stage: sends the request upstream under a fresh id and waits for its answer. */
  private async forward(clientId: RequestId, request: JSONRPCRequest): Promise<Forwarded> {
    let connection: UpstreamConnection;
    try {
      connection = await this.liveConnection();
    } catch (error) {
      return { failure: error };
    }
    const progressToken = (request.params?._meta as { progressToken?: string | number } | undefined)?.progressToken;
    const { upstreamId, reply } = connection.request({ method: request.method, params: request.params });
    this.inFlight.set(clientId, { upstreamId, connection, ...(progressToken !== undefined ? { progressToken } : {}) });
    if (progressToken !== undefined) this.byProgressToken.set(progressToken, clientId);
    let forwarded: Forwarded;
    try {
      forwarded = { answer: await reply };
    } catch (error) {
      forwarded = { failure: error };
    }
    if (this.inFlight.get(clientId)?.upstreamId !== upstreamId) return { cancelled: true }; // by the client, or the session ended
    this.inFlight.delete(clientId);
    if (progressToken !== undefined) this.byProgressToken.delete(progressToken);
    return forwarded;
  }

  private answer(id: RequestId, answer: NonNullable<ClientAnswer>): Promise<void> {
    return this.send({ jsonrpc: '2.0', id, ...answer } as JSONRPCMessage, id);
  }

  private relayClientNotification(notification: JSONRPCNotification): void {
    switch (notification.method) {
      case 'notifications/initialized':
        return; // the gateway completed the upstream handshake itself
      case 'notifications/cancelled': {
        const requestId = (notification.params as { requestId?: RequestId } | undefined)?.requestId;
        if (requestId !== undefined) {
          this.unanswered.delete(requestId); // a cancelled request gets no answer
          this.cancellers.get(requestId)?.abort();
        }
        const entry = requestId === undefined ? undefined : this.inFlight.get(requestId);
        if (!entry || requestId === undefined) return;
        this.inFlight.delete(requestId);
        if (entry.progressToken !== undefined) this.byProgressToken.delete(entry.progressToken);
        entry.connection.abandon(entry.upstreamId);
        entry.connection.notify({
          jsonrpc: '2.0',
          method: 'notifications/cancelled',
          params: { ...notification.params, requestId: entry.upstreamId },
        });
        return;
      }
      case 'notifications/roots/list_changed':
      case 'notifications/progress':
        this.connection?.notify(notification);
        return;
      default:
        this.log.debug('dropped client notification', { method: notification.method });
    }
  }

  private relayClientAnswer(answer: UpstreamReply): void {
    const key = String(answer.id);
    const target = this.serverRequests.get(key);
    if (!target) return;
    this.serverRequests.delete(key);
    target.connection.respond(target.upstreamId, isJSONRPCErrorResponse(answer) ? { error: answer.error } : { result: answer.result });
  }

  private onServerRequest(connection: UpstreamConnection, request: JSONRPCRequest): void {
    if (request.method === 'ping') {
      connection.respond(request.id, { result: {} }); // the gateway is the upstream's client
      return;
    }
    const needed = RELAYED_SERVER_REQUESTS[request.method];
    if (!needed || this.clientCapabilities[needed] === undefined) {
      connection.respond(request.id, {
        error: { code: ErrorCode.MethodNotFound, message: `The client did not declare support for ${request.method}` },
      });
      return;
    }
    const gatewayId = `gh-${this.nextServerRequestId++}`;
    this.serverRequests.set(gatewayId, { upstreamId: request.id, connection });
    void this.send({ ...request, id: gatewayId }, this.relatedClientRequest(request.params));
  }

  private onServerNotification(notification: JSONRPCNotification): void {
    if (!RELAYED_SERVER_NOTIFICATIONS.has(notification.method)) return;
    if (notification.method === 'notifications/cancelled') {
      // The upstream cancels one of its own requests to the client: translate its id.
      const upstreamId = (notification.params as { requestId?: RequestId } | undefined)?.requestId;
      const found = [...this.serverRequests].find(([, v]) => v.upstreamId === upstreamId);
      if (!found) return;
      this.serverRequests.delete(found[0]);
      void this.send({ ...notification, params: { ...notification.params, requestId: found[0] } }, undefined);
      return;
    }
    const related = UNRELATED_NOTIFICATIONS.has(notification.method) ? undefined : this.relatedClientRequest(notification.params);
    void this.send(notification, related);
  }

  /**
   * Which client request a server message belongs to, so it travels on that request's
   * stream and arrives before its answer. Progress names its request by token; other
   * messages carry no link, so they go with the newest request still open.
   */
  private relatedClientRequest(params: Record<string, unknown> | undefined): RequestId | undefined {
    const token = params?.progressToken as string | number | undefined;
    if (token !== undefined && this.byProgressToken.has(token)) return this.byProgressToken.get(token);
    let newest: RequestId | undefined;
    for (const id of this.inFlight.keys()) newest = id;
    return newest;
  }

  /** The session's upstream connection, restarted if it died; concurrent callers share one restart. */
  private liveConnection(): Promise<UpstreamConnection> {
    if (this.connection && !this.connection.isGone) return Promise.resolve(this.connection);
    if (this.closed) return Promise.reject(new Error('session closed'));
    this.reconnecting ??= this.pool
      .acquire(this.server.id, this.upstreamParams!)
      .then((connection) => {
        this.log.info('upstream restarted for session');
        this.adopt(connection);
        return connection;
      })
      .finally(() => {
        this.reconnecting = undefined;
      });
    return this.reconnecting;
  }

  private adopt(connection: UpstreamConnection): void {
    if (this.closed) {
      void connection.close();
      throw new Error('session closed');
    }
    this.connection = connection;
    connection.onServerRequest = (request) => this.onServerRequest(connection, request);
    connection.onServerNotification = (notification) => this.onServerNotification(notification);
    // A 2026-07-28 server announces list changes only on a listen stream: the connection opens one for this client.
    connection.followChanges();
    connection.whenGone((error) => {
      if (this.closed) return;
      this.log.warn('upstream connection ended', { reason: error.reason });
      this.pool.reportGone(this.server.id, connection, error.reason);
      // Server-to-client requests from the dead upstream can no longer be answered.
      for (const [id, target] of this.serverRequests) if (target.connection === connection) this.serverRequests.delete(id);
    });
  }

  private replyError(id: RequestId, code: number, message: string): void {
    void this.send({ jsonrpc: '2.0', id, error: { code, message } }, id);
  }

  private async send(message: JSONRPCMessage, relatedRequestId: RequestId | undefined): Promise<void> {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      // Once the session ended, each open request got its one answer; later ones are dropped.
      if (message.id !== undefined && !this.unanswered.delete(message.id) && this.endedWith !== undefined) return;
    }
    try {
      await this.client.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId });
    } catch (error) {
      // The client's stream is gone (it disconnected or cancelled); nothing else to do.
      this.log.debug('could not deliver to client', { error: describeError(error) });
    }
  }
}
