/**
 * Held calls (gateway/session/heldCalls.ts): a 2025-era server's questions mid-call as
 * input_required rounds for a 2026-07-28 client. The upstream connection is played by a
 * plain object that records what the gateway sends it; the whole path runs against a real
 * server and the conformance suite in test/integration/protocolEras.test.ts and
 * test/conformance/serverSuite.test.ts.
 */
import assert from 'node:assert/strict';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { createLogger } from '../../../common/log/logger';
import type { Forwarded } from '../../../gateway/call/callPipeline';
import { HeldCalls } from '../../../gateway/session/heldCalls';
import type { UpstreamConnection, UpstreamReply } from '../../../gateway/upstream/upstreamConnection';

/** An upstream connection whose calls the test ends, recording answers, abandons and notifications. */
function fakeConnection() {
  const ends = new Map<number, (reply: UpstreamReply) => void>();
  const sent = { answers: [] as Array<{ id: unknown; answer: unknown }>, abandoned: [] as number[], notified: [] as string[] };
  let nextId = 1;
  const connection = {
    requestAsIs: () => {
      const upstreamId = nextId++;
      return { upstreamId, reply: new Promise<UpstreamReply>((resolve) => ends.set(upstreamId, resolve)) };
    },
    respond: (id: unknown, answer: unknown) => void sent.answers.push({ id, answer }),
    abandon: (id: number) => void sent.abandoned.push(id),
    notify: (notification: { method: string }) => void sent.notified.push(notification.method),
  } as unknown as UpstreamConnection;
  const end = (upstreamId: number, text: string) =>
    ends.get(upstreamId)!({ jsonrpc: '2.0', id: upstreamId, result: { content: [{ type: 'text', text }] } });
  return { connection, sent, end };
}

const ENVELOPE = { clientCapabilities: { elicitation: {} }, clientInfo: { name: 'cli', version: '1' } };
const ask = (id: number, method = 'elicitation/create'): JSONRPCRequest => ({ jsonrpc: '2.0', id, method, params: { message: 'Name?' } });
const retry = (params: Record<string, unknown>): JSONRPCRequest => ({
  jsonrpc: '2.0',
  id: 2,
  method: 'tools/call',
  params: { name: 'greet', ...params },
});
const resultOf = (turn: Forwarded) =>
  'answer' in turn && 'result' in turn.answer ? (turn.answer.result as Record<string, unknown>) : undefined;
const errorOf = (turn: Forwarded) => ('answer' in turn && 'error' in turn.answer ? turn.answer.error : undefined);

describe('held calls: a 2025-era server asking a 2026-07-28 client mid-call', () => {
  const log = createLogger(undefined, 'error');

  /** A call of the tool `greet` sent upstream (upstream id 1), waiting for its first turn. */
  function startCall() {
    const upstream = fakeConnection();
    const calls = new HeldCalls(log);
    const started = calls.start(
      upstream.connection,
      { method: 'tools/call', params: { name: 'greet' } },
      ENVELOPE,
      new AbortController().signal,
    );
    return { upstream, calls, started };
  }

  async function firstRound() {
    const { upstream, calls, started } = startCall();
    assert.equal(calls.fromServer(ask(41), undefined), true, 'the one call in flight over stdio owns the question');
    const round = resultOf(await started)!;
    assert.equal(round.resultType, 'input_required');
    assert.deepEqual(round.inputRequests, { q1: { method: 'elicitation/create', params: { message: 'Name?' } } });
    return { upstream, calls, state: round.requestState as string };
  }

  it("answers the server's question with the client's answer, and gives the client the call's end", async () => {
    const { upstream, calls, state } = await firstRound();
    const resumed = calls.resume(
      retry({ inputResponses: { q1: { action: 'accept', content: { name: 'Ada' } } }, requestState: state }),
      new AbortController().signal,
    );
    // The state is checked with WebCrypto first, which takes a few turns of the event loop.
    for (let i = 0; i < 100 && upstream.sent.answers.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(upstream.sent.answers, [{ id: 41, answer: { result: { action: 'accept', content: { name: 'Ada' } } } }]);
    upstream.end(1, 'Hello, Ada');
    assert.match(JSON.stringify(resultOf(await resumed)), /Hello, Ada/);
  });

  it('refuses a changed state, a state for another tool, and a state used twice', async () => {
    const { upstream, calls, state } = await firstRound();
    const answers = { q1: { action: 'accept', content: { name: 'Ada' } } };
    const signal = new AbortController().signal;
    assert.equal(errorOf(await calls.resume(retry({ inputResponses: answers, requestState: `${state}x` }), signal))?.code, -32602);
    const other: JSONRPCRequest = {
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'other', inputResponses: answers, requestState: state },
    };
    assert.equal(errorOf(await calls.resume(other, signal))?.code, -32602);
    // Both retries check the state with WebCrypto, whose work may end in either order: the
    // one that gets there first takes the held call, the other is refused.
    const twice = [1, 2].map(() => calls.resume(retry({ inputResponses: answers, requestState: state }), signal));
    const refused = await Promise.race(twice);
    assert.equal(errorOf(refused)?.code, -32602);
    upstream.end(1, 'Hello, Ada');
    const turns = await Promise.all(twice);
    assert.deepEqual(turns.map((turn) => errorOf(turn)?.code ?? 'result').sort(), [-32602, 'result']);
  });

  it('gives the end of a call that ended while held, without answering the server on its behalf', async () => {
    const { upstream, calls, state } = await firstRound();
    upstream.end(1, 'gave up waiting');
    await new Promise((resolve) => setImmediate(resolve));
    const turn = await calls.resume(
      retry({ inputResponses: { q1: { action: 'accept', content: {} } }, requestState: state }),
      new AbortController().signal,
    );
    assert.match(JSON.stringify(resultOf(turn)), /gave up waiting/);
    assert.deepEqual(upstream.sent.answers, []);
  });

  it('ends the call with -32021 when the client cannot answer anything asked, cancelling it upstream', async () => {
    const { upstream, calls, started } = startCall();
    calls.fromServer(ask(7, 'sampling/createMessage'), undefined);
    const error = errorOf(await started)!;
    assert.deepEqual([error.code, error.data], [-32021, { requiredCapabilities: { sampling: {} } }]);
    assert.equal(
      (upstream.sent.answers[0]!.answer as { error: { code: number } }).error.code,
      -32601,
      'the server hears the client cannot',
    );
    assert.deepEqual([upstream.sent.abandoned, upstream.sent.notified], [[1], ['notifications/cancelled']]);
  });

  it('over HTTP takes only a question that came on its call’s own stream', async () => {
    const { calls } = startCall();
    assert.equal(calls.fromServer(ask(8), null), false, 'a question on no call’s stream belongs to none');
    assert.equal(calls.fromServer(ask(9), 99), false, 'nor one on another request’s stream');
    assert.equal(calls.fromServer(ask(10), 1), true);
  });
});
