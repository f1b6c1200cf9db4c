/**
 * Reviewer confirmation end to end. Second-person review: a real local IdP (oidc-provider) signs in three users,
 * the real policy server queues reviews, alice's real managed gateway waits for them, and
 * the reviewer answers with the real `gatehouse policy approve|deny` CLI. Covers approval,
 * denial with a note, no answer (the timeout denies), self-review refused, a non-member
 * refused, secrets redacted from what reviewers see, and the decision and reviewer in the
 * audit. Also: a confirm rule without a reviewer group, with no extension to ask, denies.
 *
 * The developer's own confirmation (through the extension's control channel) is in
 * developerConfirmations.test.ts; the policy and the IdP + policy server setup are in
 * test/support/confirmationSetup.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { ReviewListResponse, ReviewRecord } from '../../common/policy/policyServerApi';
import { NODE, REPO, settledSpoolEvents, startGateway, textOf, waitUntil, type RunningGateway } from '../support/gatewayHarness';
import { managedArgs, type RunningPolicyServer } from '../support/policyHarness';
import { CONFIRM_TIMEOUT_SECONDS, startConfirmationSetup, type ConfirmationSetup } from '../support/confirmationSetup';

const AWS_KEY = 'AKIA' + 'QYLPMN5HGTWX2R7B';

describe('second-person review of confirm calls', function () {
  this.timeout(120_000);
  let setup: ConfirmationSetup;
  let server: RunningPolicyServer;
  let alice: RunningGateway;
  let client: Client;
  let tokens: Record<string, string>;
  let tokenFiles: Record<string, string>;

  async function pending(user: string): Promise<ReviewRecord[]> {
    const response = await fetch(`${server.url}/v1/reviews`, { headers: { Authorization: `Bearer ${tokens[user]}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as ReviewListResponse).reviews;
  }

  async function decide(
    user: string,
    id: string,
    decision: 'approve' | 'deny',
  ): Promise<{ status: number; body: { error?: string; message?: string } }> {
    const response = await fetch(`${server.url}/v1/reviews/${id}/decision`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens[user]}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ decision }),
    });
    return { status: response.status, body: (await response.json()) as { error?: string; message?: string } };
  }

  /** The real CLI, as a reviewer runs it. */
  async function cli(...args: string[]): Promise<string> {
    const { stdout } = await promisify(execFile)(NODE, [
      join(REPO, 'dist/gatehouse.js'),
      'policy',
      ...args,
      '--server',
      server.url,
      '--token-file',
      tokenFiles.carol!,
    ]);
    return stdout;
  }

  /** Starts a call that needs review and returns it with the review it queued. */
  async function callNeedingReview(text: string): Promise<{ call: Promise<unknown>; review: ReviewRecord }> {
    const before = new Set((await pending('carol')).map((r) => r.id));
    const call = client.callTool({ name: 'echo', arguments: { text } }, undefined, { timeout: 60_000 });
    call.catch(() => undefined); // refusals are asserted by the tests, possibly after they happen
    let review: ReviewRecord | undefined;
    await waitUntil(async () => {
      review = (await pending('carol')).find((r) => !before.has(r.id));
      return review !== undefined;
    }, 10_000);
    return { call, review: review! };
  }

  before(async () => {
    setup = await startConfirmationSetup();
    ({ server, tokens, tokenFiles } = setup);
    alice = await startGateway(null, { extraArgs: managedArgs(server, tokenFiles.alice!) });
    client = await alice.connect('probe');
  });

  after(async () => {
    await client?.close();
    await alice?.stop();
    await setup?.stop();
  });

  it('runs the call once a second person approves it, with the reviewer in the audit; the requester cannot approve it', async () => {
    const { call, review } = await callNeedingReview(`deploy build 42 with ${AWS_KEY}`);
    assert.equal(review.requester.sub, 'alice');
    assert.equal(review.rule, 'deploys-reviewed');
    assert.equal(review.reason, 'deploys need a lead');
    assert.equal(review.reviewers, 'leads');
    assert.equal(review.arguments.text, 'deploy build 42 with [REDACTED:aws-access-key]', 'reviewers never see the secret');
    assert.deepEqual(await pending('alice'), [], 'a requester is never offered their own review');

    const self = await decide('alice', review.id, 'approve');
    assert.equal(self.status, 403);
    assert.equal(self.body.error, 'self_review');
    const outsider = await decide('bob', review.id, 'approve');
    assert.equal(outsider.status, 404, 'someone outside the reviewer group cannot even see it');

    const listed = await cli('reviews');
    assert.match(listed, new RegExp(`${review.id}  alice@example.com wants echo on probe`));
    assert.doesNotMatch(listed, /AKIA/);
    assert.match(await cli('approve', review.id), /^approved: echo on probe for alice@example.com/);
    // The upstream got the real key and echoed it; the gateway redacted it on the way back.
    assert.equal(textOf(await call), 'deploy build 42 with [REDACTED:aws-access-key]');

    const again = await decide('carol', review.id, 'deny');
    assert.equal(again.status, 409, 'a decided review stays decided');
    const event = (await settledSpoolEvents(join(alice.dir, 'state'))).findLast((e) => e.tool === 'echo')!;
    assert.equal(event.decision, 'confirm-approved');
    assert.equal(event.reviewer, 'carol');
    assert.equal(event.rule, 'deploys-reviewed');
    assert.equal(event.status, 'ok');
  });

  it("refuses the call with the reviewer's note when the reviewer denies it", async () => {
    const { call, review } = await callNeedingReview('deploy on friday');
    const denied = await promisify(execFile)(NODE, [
      join(REPO, 'dist/gatehouse.js'),
      'policy',
      'deny',
      review.id,
      '--note',
      'not on a friday',
      '--server',
      server.url,
      '--token-file',
      tokenFiles.carol!,
    ]);
    assert.match(denied.stdout, /^denied: echo on probe/);
    await assert.rejects(call, /Reviewer carol@example.com denied it: "not on a friday"/);
    const event = (await settledSpoolEvents(join(alice.dir, 'state'))).findLast((e) => e.tool === 'echo')!;
    assert.equal(event.decision, 'confirm-denied');
    assert.equal(event.reviewer, 'carol');
    assert.equal(event.status, 'denied');
  });

  it('denies when no reviewer answers before the policy timeout', async () => {
    const started = Date.now();
    const { call } = await callNeedingReview('deploy at midnight');
    await assert.rejects(call, /No reviewer from group "leads" answered in time|No reviewer answered within/);
    const waited = (Date.now() - started) / 1000;
    assert.ok(
      waited >= CONFIRM_TIMEOUT_SECONDS - 0.5 && waited < CONFIRM_TIMEOUT_SECONDS + 5,
      `waited ${waited} s for a ${CONFIRM_TIMEOUT_SECONDS} s timeout`,
    );
    const event = (await settledSpoolEvents(join(alice.dir, 'state'))).findLast((e) => e.tool === 'echo')!;
    assert.equal(event.decision, 'confirm-timeout');
    assert.equal(event.reviewer, undefined);
    assert.equal(event.status, 'denied');
  });

  it('denies a confirm rule without reviewers when no extension can ask the developer', async () => {
    await assert.rejects(
      client.callTool({ name: 'env', arguments: {} }),
      /Policy rule env-confirmed asks for confirmation.*VS Code extension/,
    );
    const event = (await settledSpoolEvents(join(alice.dir, 'state'))).findLast((e) => e.tool === 'env')!;
    assert.equal(event.decision, 'confirm-denied');
  });

  it('does not review calls the policy does not send for review (the server decides, not the gateway)', async () => {
    const response = await fetch(`${server.url}/v1/reviews`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.alice}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ server: 'probe', method: 'tools/call', tool: 'echo', arguments: { text: 'hello' } }),
    });
    assert.equal(response.status, 409);
    assert.equal(((await response.json()) as { error: string }).error, 'not_reviewable');
  });
});
