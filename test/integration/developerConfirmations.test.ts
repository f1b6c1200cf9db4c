/**
 * The developer's own confirmation: a gateway started as the extension starts it (`--control
 * stdio`); the test plays the extension on a real vscode-jsonrpc connection and answers
 * `gatehouse/confirm` the way the Confirm prompt would (the prompt itself is the extension's).
 * Also what else the extension hears on that channel: tools for the sidebar, audit events
 * and the recent trail, catalog updates, the sign-in token, revocation, the channel closing.
 * Second-person review is in confirmations.test.ts.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { GatewayReadyLine } from '../../common/gatewayReady';
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
import { connectModernClient } from '../support/modernClient';
import { settledSpoolEvents, spoolEvents, startGateway, textOf, waitUntil, type RunningGateway } from '../support/gatewayHarness';
import { foreignSignedToken } from '../support/hostileTokens';
import { managedArgs, type RunningPolicyServer } from '../support/policyHarness';
import { CONFIRM_POLICY, CONFIRM_TIMEOUT_SECONDS, startConfirmationSetup, type ConfirmationSetup } from '../support/confirmationSetup';

describe('second-person review of confirm calls', function () {
  this.timeout(120_000);
  let setup: ConfirmationSetup;
  let server: RunningPolicyServer;
  let tokens: Record<string, string>;
  let tokenFiles: Record<string, string>;

  before(async () => {
    setup = await startConfirmationSetup();
    ({ server, tokens, tokenFiles } = setup);
  });

  after(async () => {
    await setup?.stop();
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
      assert.equal(prompt.timeoutMs, CONFIRM_TIMEOUT_SECONDS * 1000);
      assert.equal(
        prompt.risk,
        'destructive',
        'the prompt says what the gateway believes: an untrusted server without hints is destructive',
      );
      let event = (await settledSpoolEvents(join(controlled.dir, 'state'))).findLast((e) => e.tool === 'env')!;
      assert.equal(event.decision, 'confirm-approved');
      assert.equal(event.reviewer, 'alice');

      answer = async () => ({ decision: 'deny' });
      await assert.rejects(controlledClient.callTool({ name: 'env', arguments: {} }), /env-confirmed asks for confirmation.*You denied it/);
      event = (await settledSpoolEvents(join(controlled.dir, 'state'))).findLast((e) => e.tool === 'env')!;
      assert.equal(event.decision, 'confirm-denied');
      assert.equal(event.reviewer, 'alice');
    });

    it('governs a 2026-07-28 client the same way: lists filtered, policy denials, the developer confirms', async () => {
      const modern = await connectModernClient(controlled, 'probe');
      const { tools } = await modern.listTools();
      assert.deepEqual(tools.map((tool) => tool.name).sort(), ['echo', 'env'], 'only what the policy allows this user');
      await assert.rejects(modern.callTool({ name: 'pid', arguments: {} }), /not allowed|denied|policy/i);
      answer = async () => ({ decision: 'approve' });
      const prompts = asked.length;
      const approved = await modern.callTool({ name: 'env', arguments: {} });
      assert.ok(!approved.isError, JSON.stringify(approved));
      assert.equal(asked.length, prompts + 1, 'the developer was asked');
      const events = await settledSpoolEvents(join(controlled.dir, 'state'));
      const confirmed = events.findLast((e) => e.tool === 'env')!;
      assert.deepEqual([confirmed.decision, confirmed.reviewer], ['confirm-approved', 'alice']);
      assert.ok(confirmed.flags.includes('client-mcp:2026-07-28'), 'the audit says the client spoke 2026-07-28');
      assert.equal(events.findLast((e) => e.tool === 'pid')?.decision, 'deny');
      await modern.close();
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
      const event = (await settledSpoolEvents(join(controlled.dir, 'state'))).findLast((e) => e.tool === 'env')!;
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
      const onDisk = await settledSpoolEvents(join(controlled.dir, 'state'));
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
        body: CONFIRM_POLICY.replace('title: Probe', 'title: Probe, renamed'),
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
