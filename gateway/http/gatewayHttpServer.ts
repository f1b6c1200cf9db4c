/**
 * The client-facing side: Streamable HTTP at `/mcp/<serverId>` on a 0600 unix socket or a
 * loopback port. Each request passes, in order: Host/Origin check (403), launch secret
 * (plain 401, never an OAuth challenge, which would start VS Code's own OAuth flow against
 * the gateway), route and session lookup (404), body size (413) and JSON parsing (400 with
 * a JSON-RPC parse error). A POST without a session is classified by the SDK
 * (`classifyInboundRequest`): a 2026-07-28 request stands alone and goes to
 * `StatelessRequests`, a malformed one is refused as the spec says, and anything else is
 * 2025-era traffic for a session, which the SDK's session transport handles.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { isInitializeRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { classifyInboundRequest } from '@modelcontextprotocol/server';
import type { ServerConfig } from '../config/gatewayConfig';
import { describeError, type Logger } from '../../common/log/logger';
import { ClientSession, type SessionDeps } from '../session/clientSession';
import { StatelessRequests } from '../session/statelessRequests';
import type { LaunchSecret } from './launchSecret';
import { OriginGuard, type ListenAddress } from './originGuard';
import { SessionEventStore } from './sessionEventStore';
import { serveWebTransport } from './webResponseBridge';

const MCP_PATH = /^\/mcp\/([a-z0-9][a-z0-9-]{0,62})\/?$/;
/** Clients that poll (SEP-1699) are told to come back after this long. */
const SSE_RETRY_MS = 1_000;

interface SessionEntry {
  serverId: string;
  transport: WebStandardStreamableHTTPServerTransport;
  session: ClientSession;
}

export interface GatewayHttpServerOptions {
  listen: ListenAddress;
  maxBodyBytes: number;
  secret: LaunchSecret;
  /** What each client session relays through and guards with. */
  sessions: SessionDeps;
  log: Logger;
}

export class GatewayHttpServer {
  private readonly http: Server;
  private readonly sessions = new Map<string, SessionEntry>();
  /** Requests of 2026-07-28 clients, which open no session. */
  private readonly stateless: StatelessRequests;
  private guard: OriginGuard | undefined;
  private address: ListenAddress;

  constructor(private readonly options: GatewayHttpServerOptions) {
    this.address = options.listen;
    this.stateless = new StatelessRequests(options.sessions, options.log.child({ component: 'stateless' }));
    this.http = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        options.log.error('request failed', { error: describeError(error) });
        if (!res.headersSent) jsonRpcError(res, 500, -32603, 'Internal error');
        else res.end();
      });
    });
  }

  /** Starts listening; resolves with the actual address (the port is filled in when 0 was asked). */
  async listen(): Promise<ListenAddress> {
    const address = this.options.listen;
    if (address.type === 'unix') {
      removeStaleSocket(address.path);
      // The socket is created owner-only from the start; chmod afterwards would leave a window.
      const previousUmask = process.umask(0o177);
      try {
        await new Promise<void>((resolve, reject) => {
          this.http.once('error', reject);
          this.http.listen(address.path, () => resolve());
        });
      } finally {
        process.umask(previousUmask);
      }
      chmodSync(address.path, 0o600);
      this.address = address;
    } else {
      await new Promise<void>((resolve, reject) => {
        this.http.once('error', reject);
        this.http.listen(address.port, address.host, () => resolve());
      });
      const bound = this.http.address() as AddressInfo;
      this.address = { type: 'tcp', host: address.host, port: bound.port };
    }
    this.guard = new OriginGuard(this.address);
    return this.address;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * After a policy change: sessions on servers the user may no longer use are closed (the
   * client sees 404 and starts over), the others are told to list tools again.
   */
  policyChanged(refusal: (serverId: string) => string | undefined): void {
    this.stateless.policyChanged((serverId) => !refusal(serverId) && this.options.sessions.pool.has(serverId));
    for (const [id, entry] of this.sessions) {
      const reason =
        refusal(entry.serverId) ??
        (this.options.sessions.pool.has(entry.serverId) ? undefined : `Server "${entry.serverId}" is no longer in your catalog.`);
      if (reason) {
        this.sessions.delete(id);
        void endSession(entry, reason);
      } else {
        entry.session.notifyListsChanged();
      }
    }
  }

  /** Ends every session at once (revocation), answering what is still open with `reason`. */
  closeAllSessions(reason: string): void {
    const entries = [...this.sessions.values()];
    this.sessions.clear();
    for (const entry of entries) void endSession(entry, reason);
  }

  async close(): Promise<void> {
    const entries = [...this.sessions.values()];
    this.sessions.clear();
    await this.stateless.close();
    await Promise.all(
      entries.map(async (entry) => {
        await entry.transport.close().catch(() => undefined);
        await entry.session.close();
      }),
    );
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    if (this.address.type === 'unix') {
      try {
        unlinkSync(this.address.path);
      } catch {
        /* already gone */
      }
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refusal = this.guard!.check(req.headers.host, req.headers.origin);
    if (refusal) return jsonRpcError(res, 403, -32000, `Forbidden: ${refusal}`);
    if (!this.options.secret.matchesAuthorization(req.headers.authorization)) {
      // Deliberately no resource_metadata: VS Code would start OAuth against the gateway.
      res.setHeader('WWW-Authenticate', 'Bearer realm="gatehouse-gateway"');
      return jsonRpcError(res, 401, -32001, 'Unauthorized: this gateway needs its launch secret as a Bearer token');
    }
    const route = MCP_PATH.exec(new URL(req.url ?? '/', 'http://gateway').pathname);
    const server = route ? this.options.sessions.pool.config(route[1]!) : undefined;
    if (!route || !server) {
      return jsonRpcError(res, 404, -32000, 'Not found: no such MCP server on this gateway');
    }
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
      res.setHeader('Allow', 'GET, POST, DELETE');
      return jsonRpcError(res, 405, -32000, 'Method not allowed');
    }

    let body: unknown;
    if (req.method === 'POST') {
      const read = await readBody(req, this.options.maxBodyBytes);
      if (read.tooLarge) {
        res.setHeader('Connection', 'close');
        return jsonRpcError(res, 413, -32600, `Request body exceeds ${this.options.maxBodyBytes} bytes`);
      }
      try {
        body = JSON.parse(read.text);
      } catch {
        return jsonRpcError(res, 400, -32700, 'Parse error: request body is not valid JSON');
      }
    }

    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const entry = this.sessions.get(sessionId);
      // A session belongs to the server it was opened on; any other path cannot use it.
      if (!entry || entry.serverId !== server.id) return jsonRpcError(res, 404, -32001, 'Session not found');
      return serveWebTransport(entry.transport, req, res, body);
    }
    if (req.method === 'POST') {
      const route = classifyInboundRequest({
        httpMethod: 'POST',
        ...headerOf(req, 'mcp-protocol-version', 'protocolVersionHeader'),
        ...headerOf(req, 'mcp-method', 'mcpMethodHeader'),
        ...headerOf(req, 'mcp-name', 'mcpNameHeader'),
        body,
      });
      if (route.kind === 'modern') return this.stateless.serve(server, route, req, res);
      if (route.kind === 'reject') return jsonRpcError(res, route.httpStatus, route.code, route.message, route.data, requestIdOf(body));
      if (containsInitialize(body)) return this.openSession(server, req, res, body);
    }
    return jsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
  }

  private async openSession(server: ServerConfig, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const log = this.options.log.child({ server: server.id });
    // The callback runs only once the request is being handled, after `entry` below is set.
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new SessionEventStore(),
      retryInterval: SSE_RETRY_MS,
      onsessioninitialized: (id) => {
        this.sessions.set(id, entry);
        log.info('client session opened', { session: id.slice(0, 8) });
      },
    });
    const session = new ClientSession(server, transport, this.options.sessions, log);
    const entry: SessionEntry = { serverId: server.id, transport, session };
    transport.onmessage = (message: JSONRPCMessage) => session.handleClientMessage(message);
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id && this.sessions.get(id) === entry) this.sessions.delete(id);
      void session.close();
    };
    await serveWebTransport(transport, req, res, body);
  }
}

function containsInitialize(body: unknown): boolean {
  return Array.isArray(body) ? body.some((m) => isInitializeRequest(m)) : isInitializeRequest(body);
}

async function readBody(req: IncomingMessage, limit: number): Promise<{ text: string; tooLarge: boolean }> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume(); // drain without buffering
    return { text: '', tooLarge: true };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      return { text: '', tooLarge: true };
    }
    chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), tooLarge: false };
}

/** One header for the SDK's classifier, under the name it reads (absent when the request has none). */
function headerOf<K extends string>(req: IncomingMessage, name: string, as: K): Partial<Record<K, string>> {
  const value = req.headers[name];
  return typeof value === 'string' ? ({ [as]: value } as Record<K, string>) : {};
}

/** The id of a single JSON-RPC request, so a refusal answers it (null when there is none). */
function requestIdOf(body: unknown): string | number | null {
  const id = (body as { id?: unknown } | null)?.id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

function jsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  data?: unknown,
  id: string | number | null = null,
): void {
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code, message, ...(data !== undefined ? { data } : {}) }, id });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** A socket file left by a crashed gateway would make listen() fail; anything else is not ours to remove. */
function removeStaleSocket(path: string): void {
  let stats;
  try {
    stats = lstatSync(path);
  } catch {
    return;
  }
  if (!stats.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  unlinkSync(path);
}

/** Open requests are answered with the reason first, then the session's streams end. */
async function endSession(entry: SessionEntry, reason: string): Promise<void> {
  await entry.session.refuseOpenRequests(reason).catch(() => undefined);
  await entry.transport.close().catch(() => undefined);
}
