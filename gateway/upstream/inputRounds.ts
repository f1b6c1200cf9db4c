/**
 * `input_required` results (MCP 2026-07-28 "multi round-trip requests") for a 2025-era
 * client. A modern server that needs something from the client mid-call (an elicitation,
 * a sampling, the roots) answers the call with `inputRequests` instead of sending the
 * client a request; a 2025-era client expects that request. So the gateway asks the client
 * each input request as a server-to-client request (the session relays it like any other,
 * under the client's declared capabilities), collects the answers, and sends the call again
 * with `inputResponses` and the server's `requestState`, until the server completes it or
 * `MAX_ROUNDS` rounds have passed.
 */
import type { JSONRPCErrorResponse, JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';

/** A server that keeps asking after this many rounds is refused (the spec's clients use 10 too). */
export const MAX_ROUNDS = 10;

export interface InputRequired {
  inputRequests?: Record<string, { method?: unknown; params?: unknown }>;
  requestState?: string;
}

/** The call being completed: what to send again, and how many rounds it has had. */
export interface RoundCall {
  method: string;
  params: NonNullable<JSONRPCRequest['params']>;
  rounds: number;
}

interface Round {
  call: RoundCall;
  requestState: string | undefined;
  responses: Record<string, unknown>;
  missing: Set<string>;
}

export type RoundOutcome = { retry: RoundCall } | { error: JSONRPCErrorResponse['error'] };

export class InputRounds {
  /** Input requests asked of the client and not answered yet, by the id the client sees. */
  private readonly asked = new Map<string, { round: Round; key: string }>();
  /** Open rounds by the call's first upstream id (what a cancellation names). */
  private readonly open = new Map<number, Round>();

  constructor(
    /** Asks the client; false when no client can be asked (no session). */
    private readonly askClient: (request: JSONRPCRequest) => boolean,
    /** A round is over: send the call again, or end it with an error. */
    private readonly finish: (callId: number, outcome: RoundOutcome) => void,
  ) {}

  /** The server answered `callId` with `input_required`: asks the client everything it needs. */
  start(callId: number, call: RoundCall, result: InputRequired): void {
    if (call.rounds >= MAX_ROUNDS) {
      return this.finish(callId, { error: { code: -32603, message: `the server asked for input ${MAX_ROUNDS} times without finishing` } });
    }
    const requests = Object.entries(result.inputRequests ?? {});
    const round: Round = { call, requestState: result.requestState, responses: {}, missing: new Set(requests.map(([key]) => key)) };
    if (requests.length === 0) return this.finish(callId, { retry: this.nextCall(round) });
    this.open.set(callId, round);
    for (const [key, request] of requests) {
      if (!this.open.has(callId)) return; // an earlier question of this round was refused already
      if (typeof request?.method !== 'string') return this.fail(callId, `the server asked for input "${key}" without a method`);
      const id = `input-${callId}-${key}`;
      this.asked.set(id, { round, key });
      const params = (request.params ?? {}) as JSONRPCRequest['params'];
      if (!this.askClient({ jsonrpc: '2.0', id, method: request.method, ...(params ? { params } : {}) })) {
        return this.fail(callId, 'no client is connected to answer it');
      }
    }
  }

  /** The client answered an input request; false when `id` is not one of ours. */
  answer(id: RequestId, answer: { result: Record<string, unknown> } | { error: JSONRPCErrorResponse['error'] }): boolean {
    const found = this.asked.get(String(id));
    if (!found) return false;
    this.asked.delete(String(id));
    const callId = this.callIdOf(found.round);
    if (callId === undefined) return true; // the call was cancelled meanwhile
    if ('error' in answer) {
      this.fail(callId, `the client refused the input request (${answer.error.message})`);
      return true;
    }
    found.round.responses[found.key] = answer.result;
    found.round.missing.delete(found.key);
    if (found.round.missing.size === 0) {
      this.open.delete(callId);
      this.finish(callId, { retry: this.nextCall(found.round) });
    }
    return true;
  }

  /** The call was cancelled or the connection ended: its open questions are forgotten. */
  drop(callId: number): void {
    const round = this.open.get(callId);
    if (!round) return;
    this.open.delete(callId);
    for (const [id, entry] of this.asked) if (entry.round === round) this.asked.delete(id);
  }

  private nextCall(round: Round): RoundCall {
    const { inputResponses: _old, requestState: _state, ...params } = round.call.params as Record<string, unknown>;
    return {
      method: round.call.method,
      rounds: round.call.rounds + 1,
      params: {
        ...params,
        inputResponses: round.responses,
        ...(round.requestState !== undefined ? { requestState: round.requestState } : {}),
      } as RoundCall['params'],
    };
  }

  private fail(callId: number, why: string): void {
    this.drop(callId);
    this.finish(callId, { error: { code: -32603, message: `The server needed more input to finish this request, and ${why}.` } });
  }

  private callIdOf(round: Round): number | undefined {
    for (const [callId, open] of this.open) if (open === round) return callId;
    return undefined;
  }
}
