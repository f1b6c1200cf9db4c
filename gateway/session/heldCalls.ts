/**
 * A 2025-era server asks for input in the middle of a call with requests of its own
 * (elicitation/create, sampling/createMessage, roots/list); a 2026-07-28 client cannot be
 * asked that way, it takes input only as `input_required` results. For the calls of such
 * clients to one 2025-era server, `HeldCalls` turns the one into the other:
 *  - the server's requests during a call (gathered for a moment, so questions asked
 *    together travel together) end the client's request with an `input_required` result,
 *    one input request per question; the upstream call stays open, held;
 *  - the client's retry (the same request with `inputResponses` and the `requestState` it
 *    got) answers the server's requests, and the held call goes on: to its result, or to
 *    the next round of questions;
 *  - `requestState` is the SDK v2's HMAC codec over a random handle, and the call it names
 *    must be for the same method and tool: a changed, expired, reused or foreign state is
 *    refused (-32602);
 *  - a question the client did not declare the capability for is answered to the server
 *    as unsupported; a round with nothing the client can answer ends its call with
 *    -32021 (MissingRequiredClientCapability), the upstream call cancelled;
 *  - a held call nobody comes back for within 10 minutes is cancelled upstream (and past
 *    100 held calls on one server, the oldest).
 * Which call a server request belongs to: over HTTP the POST stream it came on (a request on
 * no call's stream belongs to none); over stdio, the line's one call in flight upstream (a
 * held call's server code waits for its answers; with several in flight, it cannot be told,
 * and the server is refused).
 */
import { randomBytes } from 'node:crypto';
import { createRequestStateCodec } from '@modelcontextprotocol/server';
import { ErrorCode, type JSONRPCRequest, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../../common/log/logger';
import type { Forwarded } from '../call/callPipeline';
import type { UpstreamConnection } from '../upstream/upstreamConnection';
import type { ModernEnvelope } from '../upstream/modernProtocol';
import { RELAYED_SERVER_REQUESTS } from './relayRules';

/** How long questions asked one after the other still travel in one round. */
const GATHER_MS = 20;
/** How long a held call waits for the client to come back with its answers. */
const HOLD_MS = 10 * 60_000;
/** Held calls kept per server at most; past it the oldest is cancelled (nobody can hold the gateway's memory). */
const MAX_HELD = 100;
const MISSING_REQUIRED_CLIENT_CAPABILITY = -32021;

interface Question {
  upstreamRequestId: RequestId;
  method: string;
  params: JSONRPCRequest['params'];
}

interface Held {
  /** The connection the call went out on: its questions are answered there, whatever the line uses later. */
  connection: UpstreamConnection;
  upstreamId: number;
  method: string;
  /** The tool or prompt the call is about: the state is bound to it. */
  name: string;
  capabilities: Record<string, unknown>;
  /** The server's questions not answered yet, by the key the client sees. */
  questions: Map<string, Question>;
  nextKey: number;
  /** Set once the upstream call ended. */
  final?: Forwarded;
  /** Set once the gateway cancelled it (the client went, the hold expired). */
  cancelled?: boolean;
  /** Whoever waits for the call's next turn (its end, or a round of questions). */
  waiting?: (turn: Forwarded) => void;
  gathering?: NodeJS.Timeout;
  expiry?: NodeJS.Timeout;
}

export class HeldCalls {
  /** Calls in flight upstream (not held for the client), by upstream id. */
  private readonly active = new Map<number, Held>();
  /** Calls held for the client's answers, by the handle in their requestState. */
  private readonly held = new Map<string, Held>();
  /** The SDK's HMAC codec over the handle (per process: one gateway serves every round of a call). */
  private readonly states = createRequestStateCodec<{ handle: string }>({ key: randomBytes(32), ttlSeconds: HOLD_MS / 1000 });

  constructor(private readonly log: Logger) {}

  /** Sends the call upstream and waits for its end or its first round of questions. */
  start(
    connection: UpstreamConnection,
    request: { method: string; params?: JSONRPCRequest['params'] },
    envelope: ModernEnvelope,
    cancelled: AbortSignal,
  ): Promise<Forwarded> {
    const { upstreamId, reply } = connection.requestAsIs(request, envelope);
    const held: Held = {
      connection,
      upstreamId,
      method: request.method,
      name: nameOf(request),
      capabilities: envelope.clientCapabilities,
      questions: new Map(),
      nextKey: 1,
    };
    this.active.set(upstreamId, held);
    reply.then(
      (answer) => this.end(held, { answer }),
      (error: unknown) => this.end(held, { failure: error }),
    );
    return this.nextTurn(held, cancelled);
  }

  /** A retry with `requestState`: the held call goes on with the client's answers. */
  async resume(request: JSONRPCRequest, cancelled: AbortSignal): Promise<Forwarded> {
    const refuse = (message: string): Forwarded => ({
      answer: { jsonrpc: '2.0', id: request.id, error: { code: ErrorCode.InvalidParams, message } },
    });
    const params = request.params ?? {};
    let handle: string;
    try {
      ({ handle } = await this.states.verify(String(params.requestState), NO_CONTEXT));
    } catch {
      return refuse('Invalid or expired requestState');
    }
    const held = this.held.get(handle);
    if (!held || held.method !== request.method || held.name !== nameOf(request)) {
      return refuse('No call is waiting for this requestState (it was answered already, or for another request)');
    }
    const responses = params.inputResponses;
    if (typeof responses !== 'object' || responses === null || Array.isArray(responses)) {
      return refuse('inputResponses must be an object of answers, by the keys of the input requests');
    }
    this.held.delete(handle);
    clearTimeout(held.expiry);
    // The server gave up meanwhile (its own wait for the answer ran out): that is the call's end.
    if (held.final) return held.final;
    for (const [key, question] of held.questions) {
      const response = (responses as Record<string, unknown>)[key];
      // An answer of the wrong shape counts as missing: the question is asked again.
      if (typeof response !== 'object' || response === null || Array.isArray(response)) continue;
      held.connection.respond(question.upstreamRequestId, { result: response as Record<string, unknown> });
      held.questions.delete(key);
    }
    this.active.set(held.upstreamId, held);
    if (held.questions.size > 0) return this.round(held, cancelled); // some were not answered: asked again
    return this.nextTurn(held, cancelled);
  }

  /**
   * A request from the server: taken (true) when it belongs to a call of this line, else
   * left to the caller. `related`: over HTTP, the call whose stream it came on (null: none);
   * undefined over stdio, where only a call that is the line's one open call can own it.
   */
  fromServer(request: JSONRPCRequest, related: RequestId | null | undefined): boolean {
    if (!(request.method in RELAYED_SERVER_REQUESTS)) return false;
    // Over stdio only a call in flight upstream can be asking: a held call's server code waits for the answers it asked for.
    const inFlight = this.active.size;
    const held =
      related === undefined
        ? inFlight === 1
          ? [...this.active.values()][0]
          : undefined
        : typeof related === 'number'
          ? this.active.get(related)
          : undefined;
    if (!held) {
      if (related === undefined && inFlight > 1)
        this.log.warn('a server asked for input while several calls were open; it cannot be told whose', { method: request.method });
      return false;
    }
    held.questions.set(`q${held.nextKey++}`, { upstreamRequestId: request.id, method: request.method, params: request.params });
    held.gathering ??= setTimeout(() => {
      held.gathering = undefined;
      this.turn(held);
    }, GATHER_MS);
    return true;
  }

  /** Cancels every held call (the gateway stops, the server left the catalog). */
  closeAll(): void {
    for (const held of [...this.held.values(), ...this.active.values()]) this.cancel(held);
    this.held.clear();
    this.active.clear();
  }

  /** Waits for the call's next turn: its end, or a round of questions; the client going away cancels it. */
  private nextTurn(held: Held, cancelled: AbortSignal): Promise<Forwarded> {
    return new Promise<Forwarded>((resolve) => {
      const onCancel = () => {
        held.waiting = undefined;
        this.cancel(held);
        resolve({ cancelled: true });
      };
      if (cancelled.aborted) return onCancel();
      cancelled.addEventListener('abort', onCancel, { once: true });
      held.waiting = (turn) => {
        cancelled.removeEventListener('abort', onCancel);
        resolve(turn);
      };
      this.turn(held);
    });
  }

  /** Gives the waiting client the call's end, or (once gathered) its questions. */
  private turn(held: Held): void {
    const waiting = held.waiting;
    if (!waiting) return;
    if (held.final) {
      held.waiting = undefined;
      return waiting(held.final);
    }
    if (held.questions.size === 0 || held.gathering) return;
    held.waiting = undefined;
    void this.round(held).then(waiting);
  }

  /** The questions as an `input_required` result (what the client cannot answer is refused to the server first). */
  private async round(held: Held, cancelled?: AbortSignal): Promise<Forwarded> {
    if (cancelled?.aborted) {
      this.cancel(held);
      return { cancelled: true };
    }
    const missing: Record<string, Record<string, never>> = {};
    for (const [key, question] of held.questions) {
      const capability = RELAYED_SERVER_REQUESTS[question.method]!;
      if (held.capabilities[capability] !== undefined) continue;
      missing[capability] = {};
      held.questions.delete(key);
      held.connection.respond(question.upstreamRequestId, {
        error: { code: ErrorCode.MethodNotFound, message: `The client did not declare support for ${question.method}` },
      });
    }
    const id = held.upstreamId;
    if (held.questions.size === 0) {
      this.cancel(held);
      const message = `The server needs what the client did not declare: ${Object.keys(missing).join(', ')}`;
      return {
        answer: {
          jsonrpc: '2.0',
          id,
          error: { code: MISSING_REQUIRED_CLIENT_CAPABILITY, message, data: { requiredCapabilities: missing } },
        },
      };
    }
    const handle = randomBytes(16).toString('base64url');
    const requestState = await this.states.mint({ handle });
    if (held.cancelled) return { cancelled: true }; // the client went while the state was made
    this.active.delete(held.upstreamId);
    if (this.held.size >= MAX_HELD) {
      const [oldest, call] = this.held.entries().next().value!;
      this.held.delete(oldest);
      this.cancel(call);
    }
    this.held.set(handle, held);
    held.expiry = setTimeout(() => {
      if (this.held.delete(handle)) this.cancel(held);
    }, HOLD_MS);
    held.expiry.unref();
    const inputRequests = Object.fromEntries([...held.questions].map(([key, q]) => [key, { method: q.method, params: q.params ?? {} }]));
    return { answer: { jsonrpc: '2.0', id, result: { resultType: 'input_required', inputRequests, requestState } } };
  }

  private end(held: Held, final: Forwarded): void {
    held.final = final;
    this.active.delete(held.upstreamId);
    clearTimeout(held.gathering);
    held.gathering = undefined;
    this.turn(held);
  }

  /** Ends a call upstream: its open questions refused, the request abandoned and cancelled. */
  private cancel(held: Held): void {
    clearTimeout(held.expiry);
    clearTimeout(held.gathering);
    this.active.delete(held.upstreamId);
    if (held.final || held.cancelled) return;
    held.cancelled = true;
    for (const question of held.questions.values()) {
      held.connection.respond(question.upstreamRequestId, { error: { code: ErrorCode.InternalError, message: 'The call was cancelled' } });
    }
    held.questions.clear();
    held.connection.abandon(held.upstreamId);
    held.connection.notify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: held.upstreamId } });
  }
}

function nameOf(request: { params?: JSONRPCRequest['params'] }): string {
  const params = request.params ?? {};
  return String(params.name ?? params.uri ?? '');
}

/** The codec reads a context only to bind states to one; these states are bound by the held call's method and name instead. */
const NO_CONTEXT = {} as Parameters<ReturnType<typeof createRequestStateCodec>['verify']>[1];
