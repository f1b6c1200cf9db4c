/**
 * `input_required` rounds (gateway/upstream/inputRounds.ts) without a transport: what the
 * client is asked, what the call is sent again with, and how a round ends when the client
 * refuses, the call is cancelled, or the server keeps asking.
 */
import assert from 'node:assert/strict';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { InputRounds, MAX_ROUNDS, type RoundCall, type RoundOutcome } from '../../../gateway/upstream/inputRounds';

function setup(canAsk = true) {
  const asked: JSONRPCRequest[] = [];
  const finished: Array<[number, RoundOutcome]> = [];
  const rounds = new InputRounds(
    (request) => {
      if (canAsk) asked.push(request);
      return canAsk;
    },
    (callId, outcome) => finished.push([callId, outcome]),
  );
  return { rounds, asked, finished };
}

const call: RoundCall = { method: 'tools/call', params: { name: 'deploy', arguments: { to: 'prod' }, _meta: { keep: 1 } }, rounds: 0 };
const elicit = { method: 'elicitation/create', params: { message: 'Deploy?', requestedSchema: { type: 'object', properties: {} } } };
const sample = { method: 'sampling/createMessage', params: { messages: [], maxTokens: 10 } };

describe('input_required rounds (a 2026-07-28 server asking for input, for a 2025-era client)', () => {
  it('asks the client each input request, then sends the call again with every answer and the request state', () => {
    const { rounds, asked, finished } = setup();
    rounds.start(7, call, { inputRequests: { ok: elicit, summary: sample }, requestState: 'opaque-state' });
    assert.deepEqual(
      asked.map((request) => [request.id, request.method]),
      [
        ['input-7-ok', 'elicitation/create'],
        ['input-7-summary', 'sampling/createMessage'],
      ],
    );
    assert.equal(rounds.answer('input-7-ok', { result: { action: 'accept', content: {} } }), true);
    assert.equal(finished.length, 0, 'not before every answer is in');
    assert.equal(rounds.answer('input-7-summary', { result: { role: 'assistant', content: { type: 'text', text: 'fine' } } }), true);
    assert.equal(finished.length, 1);
    const [callId, outcome] = finished[0]!;
    assert.equal(callId, 7);
    assert.ok('retry' in outcome);
    assert.deepEqual(outcome.retry, {
      method: 'tools/call',
      rounds: 1,
      params: {
        name: 'deploy',
        arguments: { to: 'prod' },
        _meta: { keep: 1 },
        inputResponses: { ok: { action: 'accept', content: {} }, summary: { role: 'assistant', content: { type: 'text', text: 'fine' } } },
        requestState: 'opaque-state',
      },
    });
  });

  it('sends the call again at once when the server only hands back state, and ignores answers that are not its own', () => {
    const { rounds, asked, finished } = setup();
    assert.equal(rounds.answer('gh-1', { result: {} }), false, "a server request of the session's own is not a round's");
    rounds.start(3, call, { requestState: 's' });
    assert.equal(asked.length, 0);
    assert.ok('retry' in finished[0]![1] && finished[0]![1].retry.params.requestState === 's');
  });

  it('ends the call with an error when the client refuses, or no client can be asked', () => {
    const refused = setup();
    refused.rounds.start(1, call, { inputRequests: { ok: elicit } });
    refused.rounds.answer('input-1-ok', { error: { code: -32601, message: 'The client did not declare support for elicitation/create' } });
    const [, outcome] = refused.finished[0]!;
    assert.ok('error' in outcome);
    assert.match(outcome.error.message, /refused the input request \(The client did not declare support/);

    const nobody = setup(false);
    nobody.rounds.start(2, call, { inputRequests: { ok: elicit } });
    const [, none] = nobody.finished[0]!;
    assert.ok('error' in none && /no client is connected/.test(none.error.message));
  });

  it('forgets a cancelled call: a late answer finishes nothing', () => {
    const { rounds, finished } = setup();
    rounds.start(4, call, { inputRequests: { ok: elicit } });
    rounds.drop(4);
    assert.equal(rounds.answer('input-4-ok', { result: { action: 'accept' } }), false);
    assert.deepEqual(finished, []);
  });

  it(`refuses a server that keeps asking after ${MAX_ROUNDS} rounds`, () => {
    const { rounds, asked, finished } = setup();
    rounds.start(5, { ...call, rounds: MAX_ROUNDS }, { inputRequests: { ok: elicit } });
    assert.equal(asked.length, 0);
    const [, outcome] = finished[0]!;
    assert.ok('error' in outcome && /asked for input 10 times/.test(outcome.error.message));
  });
});
