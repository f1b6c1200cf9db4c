/**
 * Reviewer confirmation end to end. Second-person review: a real local IdP (oidc-provider) signs in three users,
 * the real policy server queues reviews, alice's real managed gateway waits for them, and
 * the reviewer answers with the real `gatehouse policy approve|deny` CLI. Covers approval,
 * denial with a note, no answer (the timeout denies), self-review refused, a non-member
 * refused, secrets redacted from what reviewers see, and the decision and reviewer in the
 * audit. Also: a confirm rule without a reviewer group, with no extension to ask, denies.
 *
 * The developer's own confirmation: a gateway started as the extension starts it (`--control
 * stdio`); the test plays the extension on a real vscode-jsonrpc connection and answers
 * `gatehouse/confirm` the way the Confirm prompt would (the prompt itself is the extension's).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { GatewayReadyLine } from '../../common/gatewayReady';
import type { ReviewListResponse, ReviewRecord } from '../../common/policy/policyServerApi';
import {
  AuditHistoryRequest,
  AuditNotification,
  ConfirmRequest,
  ReadyNotification,
  RevokedNotification,
  TokenRequest,
  ToolsNotification,
  type AuditParams,
  type ConfirmParams,
  type ConfirmResult,
  type ToolsParams,
} from '../../common/control/controlProtocol';
import { FIXTURES, NODE, REPO, spoolEvents, startGateway, textOf, waitUntil, type RunningGateway } from '../support/gatewayHarness';
import { foreignSignedToken, startLocalIdp, type LocalIdp } from '../support/localIdp';
import { managedArgs, removeDir, startPolicyServer, tokenFile, type RunningPolicyServer } from '../support/policyHarness';

const PROBE = join(FIXTURES, 'probe-upstream.mjs');
const TIMEOUT_SECONDS = 5;
const AWS_KEY = 'AKIA' + 'QYLPMN5HGTWX2R7B';

const POLICY = `version: 1
org: test
admins: [admins]
servers:
  - id: probe
    title: Probe
    transport: { type: stdio, command: ${NODE}, args: [${PROBE}] }
groups:
  - { id: engineers, match: [{ user: alice }] }
  - { id: leads, match: [{ user: alice }, { user: carol }] }
  - { id: admins, match: [{ user: carol }] }
rules:
  - id: deploys-reviewed
    effect: confirm
    principals: [group:engineers]
    servers: [probe]
    tools: [echo]
    when: args.text.startsWith("deploy")
    reason: deploys need a lead
    reviewers: leads
  - id: env-confirmed
    effect: confirm
    principals: [group:engineers]
    servers: [probe]
    tools: [env]
  - id: engineers-echo
    effect: allow
    principals: [group:engineers]
    servers: [probe]
    tools: [echo]
guardrails:
  confirmationTimeoutSeconds: ${TIMEOUT_SECONDS}
`;

describe('second-person review of confirm calls', function () {
  this.timeout(120_000);
  let idp: LocalIdp;
  let server: RunningPolicyServer;
  let alice: RunningGateway;
  let client: Client;
  const tokens: Record<string, string> = {};
  const tokenFiles: Record<string, string> = {};

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
    idp = await startLocalIdp();
    for (const user of ['alice', 'bob', 'carol']) tokens[user] = await idp.tokenFor(user);
    server = await startPolicyServer(idp, { policyYaml: POLICY });
    for (const user of ['alice', 'bob', 'carol']) tokenFiles[user] = tokenFile(server.dir, user, tokens[user]!);
    alice = await startGateway(null, { extraArgs: managedArgs(server, tokenFiles.alice!) });
    client = await alice.connect('probe');
  });

  after(async () => {
    await client?.close();
    await alice?.stop();
    await server?.stop();
    await idp?.stop();
    if (server) removeDir(server.dir);
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
    const event = spoolEvents(join(alice.dir, 'state')).findLast((e) => e.tool === 'echo')!;
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
    const event = spoolEvents(join(alice.dir, 'state')).findLast((e) => e.tool === 'echo')!;
    assert.equal(event.decision, 'confirm-denied');
    assert.equal(event.reviewer, 'carol');
    assert.equal(event.status, 'denied');
  });

  it('denies when no reviewer answers before the policy timeout', async () => {
    const started = Date.now();
    const { call } = await callNeedingReview('deploy at midnight');
    await assert.rejects(call, /No reviewer from group "leads" answered in time|No reviewer answered within/);
    const waited = (Date.now() - started) / 1000;
    assert.ok(waited >= TIMEOUT_SECONDS - 0.5 && waited < TIMEOUT_SECONDS + 5, `waited ${waited} s for a ${TIMEOUT_SECONDS} s timeout`);
    const event = spoolEvents(join(alice.dir, 'state')).findLast((e) => e.tool === 'echo')!;
    assert.equal(event.decision, 'confirm-timeout');
    assert.equal(event.reviewer, undefined);
    assert.equal(event.status, 'denied');
  });

  it('denies a confirm rule without reviewers when no extension can ask the developer', async () => {
    await assert.rejects(
      client.callTool({ name: 'env', arguments: {} }),
      /Policy rule env-confirmed asks for confirmation.*VS Code extension/,
    );
    const event = spoolEvents(join(alice.dir, 'state')).findLast((e) => e.tool === 'env')!;
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

  describe('confirmed by the developer through the extension (control channel)', () => {
    let controlled: RunningGateway;
    let controlledClient: Client;
    let answer: (params: ConfirmParams, cancelled: Promise<void>) => Promise<ConfirmResult | undefined>;
    const asked: ConfirmParams[] = [];
    let cancellations = 0;

    before(async () => {
      controlled = await startGateway(null, { control: true, extraArgs: managedArgs(server, tokenFiles.alice!) });
      controlled.control!.onRequest(ConfirmRequest, async (params, token) => {
        asked.push(params);
        const cancelled = new Promise<void>((resolve) =>
          token.onCancellationRequested(() => {
            cancellations++;
            resolve();
          }),
        );
        return (await answer(params, cancelled)) as ConfirmResult;
      });
      controlledClient = await controlled.connect('probe');
    });

    after(async () => {
      await controlledClient?.close();
      await controlled?.stop();
    });

    it('runs the call when the developer approves, denies it when they deny; both audited with them as reviewer', async () => {
      answer = async () => ({ decision: 'approve' });
      const approved = await controlledClient.callTool({ name: 'env', arguments: {} });
      assert.equal(approved.isError, undefined);
      const prompt = asked.at(-1)!;
      assert.equal(prompt.server, 'probe');
      assert.equal(prompt.subject, 'env');
      assert.equal(prompt.rule, 'env-confirmed');
      assert.equal(prompt.timeoutMs, TIMEOUT_SECONDS * 1000);
      assert.equal(
        prompt.risk,
        'destructive',
        'the prompt says what the gateway believes: an untrusted server without hints is destructive',
      );
      let event = spoolEvents(join(controlled.dir, 'state')).findLast((e) => e.tool === 'env')!;
      assert.equal(event.decision, 'confirm-approved');
      assert.equal(event.reviewer, 'alice');

      answer = async () => ({ decision: 'deny' });
      await assert.rejects(controlledClient.callTool({ name: 'env', arguments: {} }), /env-confirmed asks for confirmation.*You denied it/);
      event = spoolEvents(join(controlled.dir, 'state')).findLast((e) => e.tool === 'env')!;
      assert.equal(event.decision, 'confirm-denied');
      assert.equal(event.reviewer, 'alice');
    });

    it('denies on an answer that is neither approve nor deny', async () => {
      answer = async () => ({ decision: 'yes please' }) as unknown as ConfirmResult;
      await assert.rejects(controlledClient.callTool({ name: 'env', arguments: {} }), /no clear answer/);
    });

    it('denies when the developer does not answer in time, and withdraws the prompt', async () => {
      answer = async (_params, cancelled) => {
        await cancelled;
        return undefined;
      };
      const before = cancellations;
      await assert.rejects(
        controlledClient.callTool({ name: 'env', arguments: {} }, undefined, { timeout: 60_000 }),
        /No reviewer answered within 5 s/,
      );
      await waitUntil(() => cancellations === before + 1, 2_000);
      const event = spoolEvents(join(controlled.dir, 'state')).findLast((e) => e.tool === 'env')!;
      assert.equal(event.decision, 'confirm-timeout');
    });

    it('withdraws the prompt when the MCP client cancels the call', async () => {
      answer = async (_params, cancelled) => {
        await cancelled;
        return undefined;
      };
      const before = cancellations;
      const prompts = asked.length;
      const abort = new AbortController();
      const call = controlledClient.callTool({ name: 'env', arguments: {} }, undefined, { signal: abort.signal });
      call.catch(() => undefined);
      await waitUntil(() => asked.length === prompts + 1, 2_000);
      assert.equal(cancellations, before, 'the prompt is up');
      abort.abort('changed my mind');
      await assert.rejects(call);
      await waitUntil(() => cancellations === before + 1, 2_000);
      await waitUntil(() => spoolEvents(join(controlled.dir, 'state')).at(-1)?.decision === 'confirm-denied', 2_000);
    });

    it("tells the extension each server's tools as a client lists them, with risk and policy, for the sidebar", async () => {
      const heard = new Promise<ToolsParams>((resolve) => controlled.control!.onNotification(ToolsNotification, resolve));
      await controlledClient.listTools();
      const { server, tools } = await heard;
      assert.equal(server, 'probe');
      const byName = new Map(tools.map((tool) => [tool.name, tool]));
      assert.equal(byName.get('env')?.policy, 'confirm');
      assert.equal(byName.get('echo')?.policy, 'confirm-sometimes', 'only echo calls starting with "deploy" are reviewed');
      assert.equal(byName.get('echo')?.risk, 'destructive', 'an untrusted server without hints counts as destructive');
      assert.ok(!byName.has('crash') && !byName.has('sleep'), 'only what the policy lists');
    });

    it('streams each audit event to the extension once it is durable, and answers the recent trail', async () => {
      const heard: AuditParams[] = [];
      const subscription = controlled.control!.onNotification(AuditNotification, (params) => {
        heard.push(params);
      });
      answer = async () => ({ decision: 'approve' });
      await controlledClient.callTool({ name: 'env', arguments: {} });
      await waitUntil(() => heard.some(({ event }) => event.tool === 'env'), 5_000);
      subscription.dispose();
      const streamed = heard.find(({ event }) => event.tool === 'env')!.event;
      assert.equal(streamed.decision, 'confirm-approved');
      assert.equal(streamed.user, 'alice');
      const onDisk = spoolEvents(join(controlled.dir, 'state'));
      assert.deepEqual(
        onDisk.find((e) => e.id === streamed.id),
        streamed,
        'the streamed event is the durable one',
      );

      const { events } = await controlled.control!.sendRequest(AuditHistoryRequest, { limit: 3 });
      assert.deepEqual(
        events.map((e) => e.id),
        onDisk.slice(-events.length).map((e) => e.id),
        'the newest events, oldest first',
      );
      assert.equal(events.length, 3, 'as many as asked for (checkpoints between them do not count)');
      const all = await controlled.control!.sendRequest(AuditHistoryRequest, { limit: 100_000 });
      assert.deepEqual(
        all.events.map((e) => e.id),
        onDisk.map((e) => e.id),
      );
      await assert.rejects(
        controlled.control!.sendRequest(AuditHistoryRequest, { limit: 1e9 }),
        /limit/,
        'an unbounded history is refused',
      );
    });

    it("describes each server's credential in the ready line, never the credential", () => {
      assert.deepEqual(
        controlled.ready.servers.map((s) => [s.id, s.title, s.credential]),
        [['probe', 'Probe', { mode: 'none' }]],
      );
    });

    it('tells the extension the new catalog after a policy update, as a new ready notification', async () => {
      const heard = new Promise<GatewayReadyLine>((resolve) => controlled.control!.onNotification(ReadyNotification, resolve));
      const published = await fetch(`${server.url}/v1/policies`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/yaml' },
        body: POLICY.replace('title: Probe', 'title: Probe, renamed'),
      });
      assert.equal(published.status, 201, await published.clone().text());
      const ready = await heard;
      assert.equal(ready.policy.mode === 'managed' && ready.policy.version, 2);
      assert.deepEqual(
        ready.servers.map((s) => [s.id, s.title, s.state]),
        [['probe', 'Probe, renamed', 'ready']],
      );
      assert.equal(ready.pid, controlled.ready.pid, 'the same gateway, not a restart');
    });

    it("takes the user's token from the extension's sign-in (--policy-token control): never argv, env or a file; renews it after a 401", async () => {
      // alice's claims, signed by a key no IdP publishes: readable, refused by the policy server.
      const staleAliceToken = await foreignSignedToken({ sub: 'alice', iss: 'x', aud: 'y', exp: Math.floor(Date.now() / 1000) + 60 });
      let asked = 0;
      let signedIn = true;
      const signedInGateway = await startGateway(null, {
        control: true,
        extraArgs: ['--policy-server', server.url, '--policy-keys', server.keysPath, '--policy-token', 'control'],
        onControl: (connection) =>
          connection.onRequest(TokenRequest, () => {
            asked++;
            if (!signedIn) throw new Error('nobody is signed in');
            return { token: tokens.alice! };
          }),
      });
      try {
        assert.ok(
          signedInGateway.ready.policy.mode === 'managed' && signedInGateway.ready.policy.version !== undefined,
          "managed, with the user's policy",
        );
        const signedInClient = await signedInGateway.connect('probe');
        assert.equal(textOf(await signedInClient.callTool({ name: 'echo', arguments: { text: 'signed in' } })), 'signed in');
        assert.ok(asked >= 1, 'the gateway asked the extension for the token');
        assert.ok(!signedInGateway.child.spawnargs.join(' ').includes(tokens.alice!), 'not in argv');
        assert.ok(!signedInGateway.stderr().includes(tokens.alice!), 'not in the log');
        signedIn = false;
        await signedInClient.close();
      } finally {
        await signedInGateway.stop();
      }
      // A token the policy server refuses (401): the gateway asks for a renewed one once, and goes on with it.
      const asks: Array<{ refused?: boolean }> = [];
      const renewedGateway = await startGateway(null, {
        control: true,
        extraArgs: ['--policy-server', server.url, '--policy-keys', server.keysPath, '--policy-token', 'control'],
        onControl: (connection) =>
          connection.onRequest(TokenRequest, (params) => {
            asks.push(params ?? {});
            // The first answers are an expired token (sub still readable); once refused, a fresh one.
            return { token: asks.some((ask) => ask.refused) ? tokens.alice! : staleAliceToken };
          }),
      });
      try {
        assert.ok(
          renewedGateway.ready.policy.mode === 'managed' && renewedGateway.ready.policy.version !== undefined,
          'managed after the renewal',
        );
        assert.ok(
          asks.some((ask) => ask.refused === true),
          'the gateway said the last token was refused',
        );
      } finally {
        await renewedGateway.stop();
      }
      // Nobody signed in: the gateway cannot start managed, and says why.
      await assert.rejects(
        startGateway(null, {
          control: true,
          extraArgs: ['--policy-server', server.url, '--policy-keys', server.keysPath, '--policy-token', 'control'],
          onControl: (connection) =>
            connection.onRequest(TokenRequest, () => {
              throw new Error('nobody is signed in');
            }),
        }),
        /exited with 3 before ready.*no sign-in: .*nobody is signed in/s,
      );
    });

    it('tells the extension when an admin revokes the user, so it deletes the sign-in it holds (time to effect measured)', async () => {
      const told = new Promise<string>((resolve) =>
        controlled.control!.onNotification(RevokedNotification, ({ message }) => resolve(message)),
      );
      const started = performance.now();
      const revoked = await fetch(`${server.url}/v1/revocations`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ sub: 'alice' }),
      });
      assert.ok(revoked.status === 200 || revoked.status === 201, await revoked.text());
      const message = await Promise.race([
        told,
        new Promise<string>((_resolve, reject) => setTimeout(() => reject(new Error('not told within 5 s')), 5_000)),
      ]);
      const tookMs = performance.now() - started;
      console.log(`      revocation -> extension told (deletes its sign-in): ${tookMs.toFixed(0)} ms`);
      assert.match(message, /revoked by an admin/);
      await assert.rejects(controlledClient.callTool({ name: 'echo', arguments: { text: 'after revocation' } }));
      const lifted = await fetch(`${server.url}/v1/revocations`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ sub: 'alice' }),
      });
      assert.ok(lifted.status < 300, 'restored for the tests after this one');
    });

    it('stops the gateway when the extension closes the channel', async () => {
      const exited = new Promise((resolve) => controlled.child.once('exit', resolve));
      controlled.child.stdin!.end();
      assert.equal(await exited, 0);
    });
  });
});
