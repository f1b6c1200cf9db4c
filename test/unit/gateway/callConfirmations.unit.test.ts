import assert from 'node:assert/strict';
import {
  CallConfirmations,
  type ConfirmationAnswer,
  type ConfirmationRequest,
  type Confirmer,
} from '../../../gateway/confirmation/callConfirmations';
import { createLogger } from '../../../common/log/logger';

const log = createLogger(undefined, 'error');

function request(overrides: Partial<ConfirmationRequest> = {}): ConfirmationRequest {
  return {
    serverId: 'files',
    method: 'tools/call',
    subject: 'delete_file',
    arguments: {},
    ruleId: 'deletes',
    message: 'Policy rule deletes asks for confirmation.',
    timeoutMs: 200,
    ...overrides,
  };
}

/** A confirmer that answers after `ms` (never, when undefined), and remembers whether it was told to stop. */
function answering(answer: ConfirmationAnswer | Error, ms?: number): Confirmer & { stopped: boolean; asked: number } {
  const confirmer = {
    stopped: false,
    asked: 0,
    confirm(_request: ConfirmationRequest, signal: AbortSignal): Promise<ConfirmationAnswer> {
      confirmer.asked++;
      signal.addEventListener('abort', () => {
        confirmer.stopped = true;
      });
      return new Promise((resolve, reject) => {
        if (ms !== undefined) setTimeout(() => (answer instanceof Error ? reject(answer) : resolve(answer)), ms);
      });
    },
  };
  return confirmer;
}

describe('call confirmations', () => {
  it('asks the developer when no reviewer group is named, and the review queue when one is', async () => {
    const local = answering({ outcome: 'approved', reviewer: 'dev', message: 'ok' }, 1);
    const queue = answering({ outcome: 'denied', reviewer: 'lead', message: 'no' }, 1);
    const confirmations = new CallConfirmations(queue, () => local, log);
    assert.equal((await confirmations.confirm(request(), new AbortController().signal)).outcome, 'approved');
    assert.deepEqual(await confirmations.confirm(request({ reviewers: 'leads' }), new AbortController().signal), {
      outcome: 'denied',
      reviewer: 'lead',
      message: 'no',
    });
    assert.equal(local.asked, 1);
    assert.equal(queue.asked, 1);
  });

  it('denies, saying why, when nobody can be asked', async () => {
    const confirmations = new CallConfirmations(undefined, () => undefined, log);
    const own = await confirmations.confirm(request(), new AbortController().signal);
    assert.equal(own.outcome, 'denied');
    assert.match(own.message, /VS Code extension/);
    const group = await confirmations.confirm(request({ reviewers: 'leads' }), new AbortController().signal);
    assert.equal(group.outcome, 'denied');
    assert.match(group.message, /group "leads".*no policy server/);
  });

  it('times out into a denial and tells the confirmer to stop; a later approval is ignored', async () => {
    const late = answering({ outcome: 'approved', reviewer: 'dev', message: 'ok' }, 400);
    const confirmations = new CallConfirmations(undefined, () => late, log);
    const started = Date.now();
    const answer = await confirmations.confirm(request({ timeoutMs: 100 }), new AbortController().signal);
    assert.equal(answer.outcome, 'timeout');
    assert.match(answer.message, /No reviewer answered within/);
    assert.ok(Date.now() - started < 350, 'did not wait for the late approval');
    assert.equal(late.stopped, true);
  });

  it('ends the wait when the caller cancels, and turns a failing confirmer into a denial', async () => {
    const never = answering({ outcome: 'approved', message: 'ok' });
    const confirmations = new CallConfirmations(undefined, () => never, log);
    const cancel = new AbortController();
    setTimeout(() => cancel.abort(), 20);
    const cancelled = await confirmations.confirm(request({ timeoutMs: 5000 }), cancel.signal);
    assert.equal(cancelled.outcome, 'denied');
    assert.equal(never.stopped, true);
    const failing = new CallConfirmations(undefined, () => answering(new Error('channel closed'), 1), log);
    const failed = await failing.confirm(request(), new AbortController().signal);
    assert.equal(failed.outcome, 'denied');
    assert.match(failed.message, /channel closed/);
  });
});
