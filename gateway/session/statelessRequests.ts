/**
 * MCP 2026-07-28 clients at the gateway's front. Such a client opens no session: every
 * POST is one request that stands alone, naming its protocol version, capabilities and
 * identity in `_meta` (the SDK's `classifyInboundRequest` has checked that envelope and the
 * standard headers before a request gets here). Each request passes the same pipeline as
 * a session's (policy, pins, confirmation, redaction, audit) and goes to the server over
 * one connection the gateway keeps per server for these clients: to a 2026-07-28 server in
 * the modern form with the client's own envelope (its `input_required` results go back to
 * the client, which answers them itself), to a 2025-era server in its session.
 *
 * The answer is JSON, or an SSE stream when progress comes first (the SDK's
 * `PerRequestHTTPServerTransport` shapes it); `subscriptions/listen` keeps its stream open
 * (listenStreams.ts); a 2025-era server's questions mid-call become `input_required`
 * rounds (heldCalls.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PerRequestHTTPServerTransport, type InboundModernRoute } from '@modelcontextprotocol/server';
import {
  ErrorCode,
  isJSONRPCRequest,
  LATEST_PROTOCOL_VERSION,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { ServerConfig } from '../config/gatewayConfig';
import { describeError, type Logger } from '../../common/log/logger';
import { GATEHOUSE_VERSION } from '../../common/version';
import { CallPipeline, type Forwarded } from '../call/callPipeline';
import { POLICY_DENIED } from '../policy/callGate';
import type { UpstreamConnection } from '../upstream/upstreamConnection';
import { LAUNCH_CLIENT_CAPABILITIES, type InitializeParams } from '../upstream/upstreamPool';
import {
  envelopeOf,
  MODERN_PROTOCOL_VERSION,
  modernError,
  modernResult,
  PROTOCOL_VERSION_META,
  UNSUPPORTED_PROTOCOL_VERSION,
  type ModernEnvelope,
} from '../upstream/modernProtocol';
import { writeWebResponse } from '../http/webResponseBridge';
import {
  catalogServerInfo,
  RELAYED_CLIENT_METHODS,
  relayedClientCapabilities,
  relayedServerCapabilities,
  upstreamErrorText,
} from './relayRules';
import type { SessionDeps } from './clientSession';
import { HeldCalls } from './heldCalls';
import { ListenStreams } from './listenStreams';
import { ToolListing } from './toolListing';

/**
 * How the gateway's connection for stateless clients introduces itself to a 2025-era
 * server: able to answer what the gateway turns into `input_required` rounds (each call's
 * own client capabilities are checked when the server asks).
 */
const STATELESS_CLIENTS_PARAMS: InitializeParams = {
  protocolVersion: LATEST_PROTOCOL_VERSION,
  capabilities: LAUNCH_CLIENT_CAPABILITIES,
  clientInfo: { name: 'gatehouse-gateway', version: GATEHOUSE_VERSION },
};

/** 2025-era methods that 2026-07-28 removed: a modern client asking for one is told they do not exist. */
const REMOVED_METHODS = new Set(['initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe']);

/** Audit flag of a call from a 2026-07-28 client. */
const MODERN_CLIENT_FLAG = `client-mcp:${MODERN_PROTOCOL_VERSION}`;

/** One request in flight: where its progress goes. */
interface Exchange {
  transport: PerRequestHTTPServerTransport;
  requestId: RequestId;
  progressToken?: string | number;
}

/** Per server: the tool listing all stateless clients share, and the connection they go through. */
class ServerLine {
  connection: UpstreamConnection | undefined;
  /** Set when the server left the catalog (or changed transport): no new connection is opened for it. */
  ended = false;
  connecting: Promise<UpstreamConnection> | undefined;
  /** Gateway-made progress tokens (unique across clients) -> the exchange that asked. */
  readonly progress = new Map<string, Exchange>();
  /** The clients' `subscriptions/listen` streams on this server. */
  readonly listens = new ListenStreams();
  /** For a 2025-era server: calls held while their client answers the server's questions. */
  readonly held: HeldCalls;
  nextToken = 1;

  constructor(
    public server: ServerConfig,
    public listing: ToolListing,
    readonly log: Logger,
  ) {
    this.held = new HeldCalls(log);
  }

  /** The same server under a new policy's settings. */
  configure(server: ServerConfig, listing: ToolListing): void {
    this.server = server;
    this.listing = listing;
  }
}

export class StatelessRequests {
  private readonly lines = new Map<string, ServerLine>();
  private closed = false;

  constructor(
    private readonly deps: SessionDeps,
    private readonly log: Logger,
  ) {}

  /** Serves one classified 2026-07-28 message and writes its HTTP response. */
  async serve(server: ServerConfig, route: InboundModernRoute, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const transport = new PerRequestHTTPServerTransport({ classification: route.classification });
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    transport.onmessage = (message: JSONRPCMessage) => {
      if (isJSONRPCRequest(message)) void this.handle(this.line(server), message, transport);
    };
    await transport.start();
    let response: Response;
    try {
      // Only `signal` of the request is read: it ends the exchange when the client goes away.
      response = await transport.handleMessage(route.message, { request: { signal: gone.signal } as Request });
    } catch {
      res.destroy(); // closed before an answer: the client went away
      return;
    }
    await writeWebResponse(response, res);
  }

  /** After a new policy: listen streams hear that the lists changed; servers the user may no longer use are ended. */
  policyChanged(usable: (serverId: string) => boolean): void {
    for (const [id, line] of this.lines) {
      if (usable(id)) {
        line.listens.listsChanged();
        continue;
      }
      this.lines.delete(id);
      void this.end(line);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const lines = [...this.lines.values()];
    this.lines.clear();
    await Promise.all(lines.map((line) => this.end(line)));
  }

  /**
   * The server's line, following its configuration: a new policy version brings new
   * settings (title, tool risks), which the line takes over; a new transport means another
   * server, so the old line ends and a new one starts.
   */
  private line(server: ServerConfig): ServerLine {
    const current = this.lines.get(server.id);
    if (current?.server === server) return current; // every request but the first after a new policy
    if (current && JSON.stringify(current.server.transport) === JSON.stringify(server.transport)) {
      current.configure(server, this.listingOf(server, current.log));
      return current;
    }
    if (current) void this.end(current);
    const log = this.log.child({ server: server.id });
    const line = new ServerLine(server, this.listingOf(server, log), log);
    this.lines.set(server.id, line);
    return line;
  }

  private listingOf(server: ServerConfig, log: Logger): ToolListing {
    return ToolListing.forServer(server, this.deps.gate, this.deps.tools, log, this.deps.toolsListed);
  }

  /** Ends a line: its listen streams and held calls, then its connection; calls still on their way find it ended. */
  private end(line: ServerLine): Promise<void> {
    line.ended = true;
    line.listens.closeAll();
    line.held.closeAll();
    return line.connection?.close() ?? Promise.resolve();
  }

  private async handle(line: ServerLine, request: JSONRPCRequest, transport: PerRequestHTTPServerTransport): Promise<void> {
    const server = line.server;
    const reply = (answer: { result: Record<string, unknown> } | { error: { code: number; message: string; data?: unknown } }) =>
      transport.send({ jsonrpc: '2.0', id: request.id, ...answer } as JSONRPCMessage).catch(() => undefined);
    // Refusals are answered before anything is awaited: the transport then gives them their HTTP status (400, 404).
    const version = (request.params?._meta as Record<string, unknown> | undefined)?.[PROTOCOL_VERSION_META];
    if (version !== MODERN_PROTOCOL_VERSION) {
      return void reply({
        error: {
          code: UNSUPPORTED_PROTOCOL_VERSION,
          message: `Unsupported protocol version: ${String(version)}`,
          data: { supported: [MODERN_PROTOCOL_VERSION], requested: String(version) },
        },
      });
    }
    const ownMethod = request.method === 'server/discover' || request.method === 'subscriptions/listen';
    if (!ownMethod && (!RELAYED_CLIENT_METHODS.has(request.method) || REMOVED_METHODS.has(request.method))) {
      return void reply({
        error: { code: ErrorCode.MethodNotFound, message: `Method not found: ${request.method} is not relayed by Gatehouse` },
      });
    }
    const responses = request.params?.inputResponses;
    if (responses !== undefined && (typeof responses !== 'object' || responses === null || Array.isArray(responses))) {
      return void reply({ error: { code: ErrorCode.InvalidParams, message: 'inputResponses must be an object of answers' } });
    }
    const refusal = this.deps.gate.serverRefusal(server.id);
    if (refusal) return void reply({ error: { code: POLICY_DENIED, message: refusal } });
    if (request.method === 'server/discover') return void reply(await this.discover(line));
    if (request.method === 'subscriptions/listen') return this.listen(line, request, transport, reply);
    const envelope = envelopeOf(request);
    const pipeline = new CallPipeline(server, {
      ...this.deps,
      redactor: this.deps.redactorFor(server),
      listing: line.listing,
      log: line.log,
      respond: async (_request, answer) => {
        await reply(
          'result' in answer ? { result: modernResult(request.method, answer.result, identity(line)) } : modernError(request, answer.error),
        );
      },
    });
    const call = pipeline.begin(request, envelope.clientInfo);
    call.flags.push(MODERN_CLIENT_FLAG);
    // A client that goes away cancels its call: a reviewer's wait ends, the upstream request is dropped.
    const cancelled = new AbortController();
    transport.onclose = () => cancelled.abort();
    const exchange: Exchange = { transport, requestId: request.id };
    const end = await pipeline.run(
      call,
      (amended) => this.forward(line, amended, envelope, exchange, cancelled.signal),
      () => cancelled.signal,
    );
    if (line.connection?.era === 'modern') call.flags.push(`upstream-mcp:${MODERN_PROTOCOL_VERSION}`);
    // A round that asks the client for input: the call goes on in the client's next request.
    if (end.answer && 'result' in end.answer && end.answer.result.resultType === 'input_required') call.flags.push('input-required');
    await call.complete(end);
  }

  /** Opens a listen stream (listenStreams.ts); the response stays open until the client or the server ends it. */
  private async listen(
    line: ServerLine,
    request: JSONRPCRequest,
    transport: PerRequestHTTPServerTransport,
    reply: (answer: { error: { code: number; message: string } }) => void,
  ): Promise<void> {
    let gone = false;
    transport.onclose = () => (gone = true); // a client that leaves while the connection opens has no stream to keep
    let connection: UpstreamConnection;
    try {
      connection = await this.connection(line);
    } catch (error) {
      return reply({ error: { code: ErrorCode.InternalError, message: upstreamErrorText(line.server.id, error, request.method) } });
    }
    if (!gone) line.listens.open(connection, request, transport, relayedEnvelopeOf(request));
  }

  /** `server/discover` as the gateway answers it: the server as this user may use it, under its catalog id. */
  private async discover(line: ServerLine): Promise<{ result: Record<string, unknown> } | { error: { code: number; message: string } }> {
    let connection: UpstreamConnection;
    try {
      connection = await this.connection(line);
    } catch (error) {
      return { error: { code: ErrorCode.InternalError, message: upstreamErrorText(line.server.id, error, 'server/discover') } };
    }
    const upstream = connection.initialized!;
    const result: Record<string, unknown> = {
      supportedVersions: [MODERN_PROTOCOL_VERSION],
      capabilities: relayedServerCapabilities(upstream.capabilities, { subscribe: false }),
      ...(upstream.instructions !== undefined ? { instructions: upstream.instructions } : {}),
    };
    return { result: modernResult('server/discover', result, identity(line)) };
  }

  /** The forward stage for a stateless client: its request upstream, and its progress back on its own response. */
  private async forward(
    line: ServerLine,
    request: JSONRPCRequest,
    envelope: ModernEnvelope,
    exchange: Exchange,
    cancelled: AbortSignal,
  ): Promise<Forwarded> {
    let connection: UpstreamConnection;
    try {
      connection = await this.connection(line);
    } catch (error) {
      return { failure: error };
    }
    const meta = request.params?._meta as { progressToken?: string | number } | undefined;
    let token: string | undefined;
    let params = request.params;
    if (meta?.progressToken !== undefined) {
      // Tokens are the client's own and may collide between clients: upstream each gets one of the gateway's.
      token = `gh-progress-${line.nextToken++}`;
      line.progress.set(token, { ...exchange, progressToken: meta.progressToken });
      params = { ...params, _meta: { ...meta, progressToken: token } };
    }
    if (connection.era === 'legacy') {
      // A 2025-era server may ask for input mid-call: such calls are held between the client's rounds (heldCalls.ts).
      try {
        return await (params?.requestState !== undefined
          ? line.held.resume({ ...request, params }, cancelled)
          : line.held.start(connection, { method: request.method, params }, envelope, cancelled));
      } finally {
        if (token !== undefined) line.progress.delete(token);
      }
    }
    const { upstreamId, reply } = connection.requestAsIs({ method: request.method, params }, envelope);
    const onCancel = () => {
      connection.abandon(upstreamId);
      connection.notify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: upstreamId } });
    };
    cancelled.addEventListener('abort', onCancel, { once: true });
    try {
      const answer = await reply;
      if (cancelled.aborted) return { cancelled: true };
      return { answer };
    } catch (error) {
      return cancelled.aborted ? { cancelled: true } : { failure: error };
    } finally {
      cancelled.removeEventListener('abort', onCancel);
      if (token !== undefined) line.progress.delete(token);
    }
  }

  /** The line's connection, (re)opened when missing or gone; concurrent callers share one opening. */
  private connection(line: ServerLine): Promise<UpstreamConnection> {
    if (line.ended) return Promise.reject(new Error(`server "${line.server.id}" is no longer served to this client`));
    if (line.connection && !line.connection.isGone) return Promise.resolve(line.connection);
    if (this.closed) return Promise.reject(new Error('the gateway is shutting down'));
    line.connecting ??= this.deps.pool
      .acquire(line.server.id, STATELESS_CLIENTS_PARAMS)
      .then((connection) => {
        if (line.ended) {
          void connection.close(); // the line ended while it opened
          throw new Error(`server "${line.server.id}" is no longer served to this client`);
        }
        line.connection = connection;
        connection.onServerRequest = (request, related) => {
          if (request.method === 'ping') return connection.respond(request.id, { result: {} }); // the gateway is its client
          if (line.held.fromServer(request, related)) return;
          connection.respond(request.id, {
            error: {
              code: ErrorCode.MethodNotFound,
              message: `${request.method}: Gatehouse cannot tell which call of a client (MCP ${MODERN_PROTOCOL_VERSION}) this is for`,
            },
          });
        };
        connection.onServerNotification = (notification) => {
          if (!line.listens.fromServer(notification, connection.era)) this.relayProgress(line, notification);
        };
        connection.whenGone((error) => {
          this.deps.pool.reportGone(line.server.id, connection, error.reason);
          this.log.warn('upstream connection for stateless clients ended', { server: line.server.id, reason: error.reason });
        });
        return connection;
      })
      .finally(() => {
        line.connecting = undefined;
      });
    return line.connecting;
  }

  /** Progress goes back on the response of the request it is about, under the client's own token; nothing else can be placed. */
  private relayProgress(line: ServerLine, notification: JSONRPCNotification): void {
    if (notification.method !== 'notifications/progress') return;
    const token = (notification.params as { progressToken?: unknown } | undefined)?.progressToken;
    const exchange = typeof token === 'string' ? line.progress.get(token) : undefined;
    if (!exchange) return;
    const params = { ...notification.params, progressToken: exchange.progressToken };
    exchange.transport.send({ ...notification, params }, { relatedRequestId: exchange.requestId }).catch((error: unknown) => {
      this.log.debug('could not deliver progress', { error: describeError(error) });
    });
  }
}

/** The client's envelope, with only the capabilities the gateway relays. */
function relayedEnvelopeOf(request: JSONRPCRequest): ModernEnvelope {
  const envelope = envelopeOf(request);
  return { ...envelope, clientCapabilities: relayedClientCapabilities(envelope.clientCapabilities) as Record<string, unknown> };
}

/** How the gateway names a server to clients: its stable catalog id, like `initialize` does. */
function identity(line: ServerLine): Record<string, unknown> {
  return catalogServerInfo(line.server, line.connection?.initialized?.serverInfo);
}
