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
import type { CallAuditor, CallOutcome } from '../audit/callAuditor';
import type { SecretRedactor } from '../guardrails/redaction/secretRedactor';
import { scanValue } from '../guardrails/injection/injectionScanner';
import type { RiskSource } from '../guardrails/risk/toolRisk';
import type { ToolSummary } from '../../common/control/controlProtocol';
import { ToolListing, type DefinitionNotice, type ListedTool } from './toolListing';
import type { ToolGuard } from '../guardrails/toolGuard';
import { POLICY_DENIED, type CallGate, type GateDecision } from '../policy/callGate';
import type { CallConfirmations, ConfirmationAnswer } from '../confirmation/callConfirmations';
import { REVIEW_PROOF_META_KEY } from '../../common/policy/policyServerApi';
import { describeError, type Logger } from '../../common/log/logger';
import type { UpstreamConnection, UpstreamReply } from '../upstream/upstreamConnection';
import {
  RELAYED_CLIENT_METHODS,
  RELAYED_SERVER_NOTIFICATIONS,
  RELAYED_SERVER_REQUESTS,
  UNRELATED_NOTIFICATIONS,
  relayedClientCapabilities,
  relayedServerCapabilities,
  upstreamErrorText,
} from './relayRules';
import type { InitializeParams, UpstreamPool } from '../upstream/upstreamPool';

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
  private readonly toolListing: ToolListing;
  /** Client request id -> the upstream request it became. Insertion order = age. */
  private readonly inFlight = new Map<RequestId, InFlight>();
  private readonly byProgressToken = new Map<string | number, RequestId>();
  /** Ids the gateway gave to server-to-client requests -> the upstream's own id. */
  private readonly serverRequests = new Map<string, { upstreamId: RequestId; connection: UpstreamConnection }>();
  /** Client requests relayed and not answered yet (answered at once if the session ends). */
  private readonly unanswered = new Set<RequestId>();
  /** Set when the session was ended (policy expired, access revoked): every request gets this refusal. */
  private endedWith: string | undefined;
  /** Client requests waiting for a reviewer -> how to stop waiting if the client cancels. */
  private readonly awaitingReview = new Map<RequestId, AbortController>();
  private nextServerRequestId = 1;
  private closed = false;

  private readonly pool: UpstreamPool;
  private readonly tools: ToolGuard;
  private readonly redactor: SecretRedactor;

  constructor(
    private readonly server: ServerConfig,
    private readonly client: Transport,
    private readonly deps: SessionDeps,
    private readonly log: Logger,
  ) {
    this.pool = deps.pool;
    this.tools = deps.tools;
    this.redactor = deps.redactorFor(server);
    const risk: RiskSource = {
      trusted: server.trusted,
      toolRisk: Object.fromEntries(
        Object.entries(server.tools).flatMap(([name, settings]) => (settings.risk ? [[name, settings.risk]] : [])),
      ),
    };
    this.toolListing = new ToolListing(server.id, risk, deps.gate, deps.tools, log, deps.toolsListed);
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
    for (const [, cancel] of this.awaitingReview) cancel.abort(); // the wait ends without an answer of its own
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
        serverInfo: {
          name: this.server.id,
          title: this.server.title ?? upstream.serverInfo.title ?? upstream.serverInfo.name,
          version: upstream.serverInfo.version,
        },
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
    const startedAt = performance.now();
    const receivedAt = new Date().toISOString();
    const base = { serverId: this.server.id, client: this.clientInfo, request, startedAt, receivedAt };
    // Tool checks first: policy conditions must only ever see arguments of the approved shape.
    const refusal = this.tools.refusal(this.server.id, request);
    const decision: GateDecision = refusal ? { effect: 'deny', ...refusal } : this.deps.gate.decide(this.server.id, request);
    const rule = decision.ruleId !== undefined ? { rule: decision.ruleId } : {};
    const toolFlags = request.method === 'tools/call' ? this.tools.callFlags(this.server.id, String(request.params?.name ?? '')) : [];
    if (decision.effect === 'deny') {
      this.log.info('denied request', { method: request.method, rule: decision.ruleId });
      await this.deps.auditor.record({
        ...base,
        ...rule,
        decision: 'deny',
        status: 'denied',
        flags: [...toolFlags, ...(decision.flags ?? [])],
      });
      return this.replyError(request.id, POLICY_DENIED, decision.message);
    }
    let outcome: Omit<CallOutcome, 'status'> = { ...base, ...rule, decision: 'allow', flags: toolFlags };
    if (decision.effect === 'confirm') {
      const answer = await this.askReviewer(request, decision);
      const reviewer = answer.reviewer !== undefined ? { reviewer: answer.reviewer } : {};
      if (answer.outcome !== 'approved') {
        this.log.info('confirmation did not approve the request', {
          method: request.method,
          rule: decision.ruleId,
          outcome: answer.outcome,
        });
        await this.deps.auditor.record({
          ...outcome,
          ...reviewer,
          decision: answer.outcome === 'timeout' ? 'confirm-timeout' : 'confirm-denied',
          status: 'denied',
        });
        if (answer.cancelled) return; // the client cancelled: it expects no answer
        return this.replyError(request.id, POLICY_DENIED, answer.message);
      }
      outcome = { ...outcome, ...reviewer, decision: 'confirm-approved' };
      // Through the policy server's relay the approval must be shown: the review's id, which the relay checks and strips.
      if (answer.reviewId !== undefined && this.server.viaRelay) request = withReviewProof(request, answer.reviewId);
    }
    const audit = this.deps.auditor.audits(request.method) || decision.effect === 'confirm' ? outcome : undefined;
    let connection: UpstreamConnection;
    try {
      connection = await this.liveConnection();
    } catch (error) {
      if (audit) await this.deps.auditor.record({ ...audit, status: 'upstream-error' });
      return this.replyError(request.id, ErrorCode.InternalError, upstreamErrorText(this.server.id, error, request.method));
    }
    const progressToken = (request.params?._meta as { progressToken?: string | number } | undefined)?.progressToken;
    const { upstreamId, reply } = connection.request({ method: request.method, params: request.params });
    this.inFlight.set(request.id, { upstreamId, connection, ...(progressToken !== undefined ? { progressToken } : {}) });
    if (progressToken !== undefined) this.byProgressToken.set(progressToken, request.id);
    let answer: UpstreamReply | undefined;
    let failure: unknown;
    try {
      answer = await reply;
    } catch (error) {
      failure = error;
    }
    const entry = this.inFlight.get(request.id);
    if (entry?.upstreamId !== upstreamId) return; // cancelled by the client: no answer is sent
    this.inFlight.delete(request.id);
    if (progressToken !== undefined) this.byProgressToken.delete(progressToken);
    if (answer) return this.deliverAnswer(request, answer, audit);
    if (audit) await this.deps.auditor.record({ ...audit, status: 'upstream-error' });
    this.replyError(request.id, ErrorCode.InternalError, upstreamErrorText(this.server.id, failure, request.method));
  }

  /**
   * Waits for a reviewer's answer to a call the policy marks `confirm`. The reviewer sees
   * the arguments with secrets redacted. The client cancelling the call ends the wait.
   */
  private async askReviewer(
    request: JSONRPCRequest,
    decision: GateDecision & { effect: 'confirm' },
  ): Promise<ConfirmationAnswer & { cancelled?: true }> {
    const cancel = new AbortController();
    this.awaitingReview.set(request.id, cancel);
    try {
      const shown = this.redactor.redactResult(request.method, decision.args).result as Record<string, unknown>;
      const answer = await this.deps.confirmations.confirm(
        {
          serverId: this.server.id,
          method: request.method,
          subject: decision.subject,
          arguments: shown,
          ruleId: decision.ruleId,
          message: decision.message,
          ...(decision.reviewers !== undefined ? { reviewers: decision.reviewers } : {}),
          ...(request.method === 'tools/call' ? { risk: this.toolListing.riskOf(decision.subject) } : {}),
          timeoutMs: decision.timeoutMs,
        },
        cancel.signal,
      );
      return cancel.signal.aborted && answer.outcome !== 'approved' ? { ...answer, cancelled: true } : answer;
    } catch (error) {
      return {
        outcome: 'denied',
        message: `${decision.message} Gatehouse could not ask a reviewer (${describeError(error)}), so the call is denied.`,
      };
    } finally {
      this.awaitingReview.delete(request.id);
    }
  }

  /**
   * The guardrails on the way back: list filtering (policy, pins), secret redaction,
   * injection flags, then the audit event, durable before the client sees anything.
   * `audit` is undefined for methods that are not audited.
   */
  private async deliverAnswer(
    request: JSONRPCRequest,
    answer: UpstreamReply,
    audit: Omit<CallOutcome, 'status'> | undefined,
  ): Promise<void> {
    let result: Record<string, unknown> | undefined;
    let redactions: Record<string, number> = {};
    let injection: string[] = [];
    let notices: DefinitionNotice[] = [];
    if (isJSONRPCResultResponse(answer)) {
      try {
        // Pins are judged on what the upstream sent; secrets are redacted from what the client gets.
        const filtered = this.filterResult(request.method, answer.result);
        notices = filtered.notices;
        const redacted = this.redactor.redactResult(request.method, filtered.result);
        result = redacted.result as Record<string, unknown>;
        redactions = redacted.findings;
      } catch (error) {
        this.log.warn('result could not be scanned for secrets; withholding it', { method: request.method, error: describeError(error) });
        if (audit) await this.deps.auditor.record({ ...audit, status: 'error' });
        return this.replyError(request.id, ErrorCode.InternalError, 'Gatehouse could not scan this result for secrets, so it is withheld.');
      }
      if (Object.keys(redactions).length > 0)
        this.log.info('redacted secrets from a result', { method: request.method, kinds: redactions });
      if (audit) injection = scanValue(result).map((flag) => `injection:${flag}`);
    }
    if (notices.length > 0) await this.auditDefinitions(request, notices);
    const flags = [...(audit?.flags ?? []), ...injection];
    if (injection.length > 0 && this.deps.gate.injectionMode() === 'block') {
      if (audit) await this.deps.auditor.record({ ...audit, status: 'error', redactions, flags });
      return this.replyError(
        request.id,
        POLICY_DENIED,
        `Gatehouse withheld this result: it carries markers of instructions aimed at the model (${injection.join(', ')}), and the org policy blocks those.`,
      );
    }
    if (audit) {
      const status = !result || result.isError === true ? 'error' : 'ok';
      if (!(await this.deps.auditor.record({ ...audit, status, redactions, flags }))) {
        return this.replyError(
          request.id,
          ErrorCode.InternalError,
          'Gatehouse could not write the audit record for this call, so its result is withheld. Check the gateway log.',
        );
      }
    }
    await this.send((result ? { jsonrpc: '2.0', id: request.id, result } : { ...answer, id: request.id }) as JSONRPCMessage, request.id);
  }

  /** Policy filtering, then (for tool lists) pins, poisoning flags and the hints clients see. */
  private filterResult(method: string, result: Record<string, unknown>): { result: Record<string, unknown>; notices: DefinitionNotice[] } {
    const allowed = this.deps.gate.filterResult(this.server.id, method, result);
    if (method !== 'tools/list' || !Array.isArray(allowed.tools)) return { result: allowed, notices: [] };
    const listed = this.toolListing.present(allowed.tools as ListedTool[]);
    return { result: { ...allowed, tools: listed.tools }, notices: listed.notices };
  }

  /** One audit event per noticed definition change or flag: `tools/list`, the tool, its flags. */
  private async auditDefinitions(request: JSONRPCRequest, notices: DefinitionNotice[]): Promise<void> {
    for (const notice of notices) {
      await this.deps.auditor.record({
        serverId: this.server.id,
        client: this.clientInfo,
        request,
        subject: notice.tool,
        startedAt: performance.now(),
        receivedAt: new Date().toISOString(),
        decision: notice.hidden ? 'deny' : 'allow',
        status: notice.hidden ? 'denied' : 'ok',
        flags: notice.flags,
      });
    }
  }

  private relayClientNotification(notification: JSONRPCNotification): void {
    switch (notification.method) {
      case 'notifications/initialized':
        return; // the gateway completed the upstream handshake itself
      case 'notifications/cancelled': {
        const requestId = (notification.params as { requestId?: RequestId } | undefined)?.requestId;
        if (requestId !== undefined) {
          this.unanswered.delete(requestId); // a cancelled request gets no answer
          this.awaitingReview.get(requestId)?.abort();
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

/** `request` with an approved review's id in `params._meta`, for the relay. */
function withReviewProof(request: JSONRPCRequest, reviewId: string): JSONRPCRequest {
  const params = request.params ?? {};
  const meta = (params._meta ?? {}) as Record<string, unknown>;
  return { ...request, params: { ...params, _meta: { ...meta, [REVIEW_PROOF_META_KEY]: reviewId } } };
}
