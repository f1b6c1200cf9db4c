/**
 * One live MCP connection from the gateway to one upstream server, over any SDK transport.
 * It performs the initialize handshake, numbers the requests it sends (so client ids never
 * reach the upstream and cannot collide), and turns the transport ending into one
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
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { describeError } from '../../common/log/logger';

export type UpstreamReply = JSONRPCResponse | JSONRPCErrorResponse;

/** The upstream can no longer answer: it exited, its connection dropped, or it never started. */
export class UpstreamGoneError extends Error {
  constructor(
    readonly serverId: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Upstream server "${serverId}" is unavailable: ${reason}`, options);
    this.name = 'UpstreamGoneError';
  }
}

/** The upstream failed repeatedly and the gateway is waiting before it tries again. */
export class UpstreamBackoffError extends UpstreamGoneError {
  constructor(serverId: string, failures: number, retryInMs: number, lastError: string | undefined) {
    super(
      serverId,
      `it failed ${failures} times in a row; Gatehouse tries again in ${Math.ceil(retryInMs / 1000)} s (last error: ${lastError ?? 'see the gateway log'})`,
    );
    this.name = 'UpstreamBackoffError';
  }
}

interface Waiting {
  resolve(reply: UpstreamReply): void;
  reject(error: Error): void;
}

export class UpstreamConnection {
  /** Requests and notifications the upstream sends to its client. Set by the owning session. */
  onServerRequest?: (request: JSONRPCRequest) => void;
  onServerNotification?: (notification: JSONRPCNotification) => void;

  readonly openedAt = Date.now();
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private gone: UpstreamGoneError | undefined;
  private initializeResult: InitializeResult | undefined;
  private readonly goneListeners = new Set<(error: UpstreamGoneError) => void>();

  constructor(
    readonly serverId: string,
    private readonly transport: Transport,
    /** Explains an unexpected close (e.g. the process exit code) in error messages. */
    private readonly describeClose: () => string = () => 'connection closed',
  ) {
    transport.onmessage = (message) => this.onMessage(message);
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

  get initialized(): InitializeResult | undefined {
    return this.initializeResult;
  }

  /** Starts the transport and completes the MCP handshake within `timeoutMs`. */
  async open(params: InitializeRequest['params'], timeoutMs: number): Promise<InitializeResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UpstreamGoneError(this.serverId, `no answer to initialize within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const handshake = (async () => {
        await this.transport.start();
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

  /** Sends a request upstream under a fresh id; `reply` settles with the upstream's answer. */
  request(call: { method: string; params?: JSONRPCRequest['params'] }): { upstreamId: number; reply: Promise<UpstreamReply> } {
    const upstreamId = this.nextId++;
    if (this.gone) return { upstreamId, reply: Promise.reject(this.gone) };
    const reply = new Promise<UpstreamReply>((resolve, reject) => this.waiting.set(upstreamId, { resolve, reject }));
    const message: JSONRPCRequest =
      call.params === undefined
        ? { jsonrpc: '2.0', id: upstreamId, method: call.method }
        : { jsonrpc: '2.0', id: upstreamId, method: call.method, params: call.params };
    this.transport.send(message).catch((error: unknown) => this.failOne(upstreamId, error));
    return { upstreamId, reply };
  }

  /** Forgets a request the client cancelled; any late answer is dropped. */
  abandon(upstreamId: number): void {
    this.waiting.delete(upstreamId);
  }

  notify(notification: JSONRPCNotification): void {
    if (this.gone) return;
    this.transport.send(notification).catch(() => {
      /* a notification to a gone upstream has nobody to reach */
    });
  }

  /** Answers a request the upstream sent to its client. */
  respond(id: RequestId, answer: { result: Record<string, unknown> } | { error: JSONRPCErrorResponse['error'] }): void {
    if (this.gone) return;
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

  private onMessage(message: JSONRPCMessage): void {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      const id = message.id;
      const entry = typeof id === 'number' ? this.waiting.get(id) : undefined;
      if (!entry) return; // abandoned or unknown: nothing waits for it
      this.waiting.delete(id as number);
      entry.resolve(message);
    } else if (isJSONRPCRequest(message)) {
      this.onServerRequest?.(message);
    } else if (isJSONRPCNotification(message)) {
      this.onServerNotification?.(message);
    }
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
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const entry of waiting) entry.reject(this.gone);
    const listeners = [...this.goneListeners];
    this.goneListeners.clear();
    for (const listener of listeners) listener(this.gone);
  }
}
