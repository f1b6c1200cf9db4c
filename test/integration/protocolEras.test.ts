/**
 * MCP 2026-07-28 servers through the gateway (issue #13, first part): a real modern-only
 * server (the official SDK v2, test/fixtures/modern-upstream.ts) that refuses 2025-era
 * clients is reached by a 2025-era client (the SDK 1.x client, as VS Code is) through the
 * gateway, which finds the server's era with `server/discover`, keeps the client's session
 * itself and sends each request in the modern form; the guardrails apply as for any server,
 * and the audit records the era.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ElicitRequestSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import {
  fixtureServer,
  settledSpoolEvents,
  startGateway,
  startHttpFixture,
  textOf,
  waitUntil,
  type RunningGateway,
} from '../support/gatewayHarness';
import { answerElicitations, connectModernClient, MODERN_VERSION, postModern } from '../support/modernClient';

/** The tools of test/fixtures/modern-upstream.ts, sorted. */
const MODERN_FIXTURE_TOOLS = ['add_tool', 'cancellations', 'confirm_echo', 'echo', 'leak', 'list_requests', 'slow'];

describe('a 2026-07-28 server through the gateway, for a 2025-era client', function () {
  this.timeout(60_000);
  let modern: { child: ChildProcess; url: string };
  let gateway: RunningGateway;
  let client: Client;

  before(async () => {
    modern = await startHttpFixture('modern-upstream');
    gateway = await startGateway(
      [
        { id: 'modern', title: 'Modern', transport: { type: 'streamable-http', url: modern.url } },
        fixtureServer('probe', 'probe-upstream'),
        fixtureServer('modern-stdio', 'modern-upstream', ['--stdio']),
      ],
      { gateway: { upstreamStart: 'eager' } },
    );
    client = await gateway.connect('modern', { name: 'era-test' });
  });
  after(async () => {
    await gateway?.stop();
    modern?.child.kill();
  });

  it('is a server a 2025-era client cannot use on its own', async () => {
    const direct = new Client({ name: 'direct', version: '1' });
    await assert.rejects(direct.connect(new StreamableHTTPClientTransport(new URL(modern.url))), /Unsupported protocol version|-32022|400/);
  });

  it('is found to speak 2026-07-28 and said so in the ready line, beside a 2025-era server', () => {
    const byId = Object.fromEntries(gateway.ready.servers.map((s) => [s.id, s]));
    assert.equal(byId.modern?.state, 'ready');
    assert.equal(byId.modern?.protocolVersion, '2026-07-28');
    assert.equal(byId.probe?.state, 'ready');
    assert.match(byId.probe?.protocolVersion ?? '', /^2025-/);
  });

  it('answers the 2025 handshake for it, with its capabilities and instructions', () => {
    assert.equal(client.getServerVersion()?.name, 'modern', 'named by its catalog id, as for every server');
    assert.ok(client.getServerCapabilities()?.tools, 'the tools capability from server/discover');
    assert.equal(client.getInstructions(), 'A 2026-07-28-only test server.');
  });

  it('lists and calls its tools; results come back in the 2025 form', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((tool) => tool.name).sort(), MODERN_FIXTURE_TOOLS);
    const result = await client.callTool({ name: 'echo', arguments: { text: 'across the eras' } });
    assert.equal(textOf(result), 'across the eras');
    assert.ok(!('resultType' in result) && !('ttlMs' in result) && !('cacheScope' in result), JSON.stringify(result));
  });

  it('speaks 2026-07-28 over stdio too', async () => {
    assert.equal(gateway.ready.servers.find((s) => s.id === 'modern-stdio')?.protocolVersion, '2026-07-28');
    const overStdio = await gateway.connect('modern-stdio');
    assert.deepEqual((await overStdio.listTools()).tools.map((tool) => tool.name).sort(), MODERN_FIXTURE_TOOLS);
    assert.equal(textOf(await overStdio.callTool({ name: 'echo', arguments: { text: 'through a pipe' } })), 'through a pipe');
  });

  it('applies the guardrails: a secret in its result is redacted', async () => {
    const text = textOf(await client.callTool({ name: 'leak', arguments: {} }));
    assert.ok(!text.includes('ghp_'), text);
    assert.match(text, /REDACTED/);
  });

  it("relays a modern server's own refusal as its answer, not as a broken server", async () => {
    // This client declared no elicitation, so the server refuses to ask for input (-32021, HTTP 400).
    await assert.rejects(client.callTool({ name: 'confirm_echo', arguments: { text: 'x' } }), (error: Error) => {
      assert.match(error.message, /-32021|client capabilities do not declare/);
      assert.doesNotMatch(error.message, /restarts it/);
      return true;
    });
  });

  it("asks the client for what an input_required result needs, then completes the call with the client's answers", async () => {
    const asking = await gateway.connect('modern', { capabilities: { elicitation: { form: {} } } });
    const asked: string[] = [];
    let reply: { action: 'accept'; content: { confirm: boolean } } | { action: 'decline' } = {
      action: 'accept',
      content: { confirm: true },
    };
    asking.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push((request.params as { message: string }).message);
      return reply;
    });
    assert.equal(textOf(await asking.callTool({ name: 'confirm_echo', arguments: { text: 'x' } })), 'confirmed: x');
    reply = { action: 'decline' };
    assert.equal(textOf(await asking.callTool({ name: 'confirm_echo', arguments: { text: 'y' } })), 'not confirmed');
    assert.deepEqual(asked, ['Echo "x"?', 'Echo "y"?'], 'the 2025-era client was asked with an elicitation/create request');
  });

  it('records the era in the audit of each call that crossed the bridge, and only those', async () => {
    const probe = await gateway.connect('probe');
    assert.equal(textOf(await probe.callTool({ name: 'echo', arguments: { text: 'old' } })), 'old');
    const events = await settledSpoolEvents(join(gateway.dir, 'state'));
    const modernCalls = events.filter((e) => e.server === 'modern');
    assert.deepEqual(
      modernCalls.map((e) => [e.tool, e.status, e.flags.includes('upstream-mcp:2026-07-28')]),
      [
        ['echo', 'ok', true],
        ['leak', 'ok', true],
        ['confirm_echo', 'error', true],
        ['confirm_echo', 'ok', true],
        ['confirm_echo', 'ok', true],
      ],
    );
    assert.equal(modernCalls.find((e) => e.tool === 'leak')?.redactions['github-token'] ?? 0, 1, 'the redaction is counted');
    const probeCall = events.find((e) => e.server === 'probe' && e.tool === 'echo');
    assert.ok(probeCall && !probeCall.flags.some((flag) => flag.startsWith('upstream-mcp:')), 'a 2025-era server is not flagged');
  });
  it("keeps the server's tool list for the ttlMs it gave, until the server announces a change", async () => {
    const session = await gateway.connect('modern');
    const listRequests = async () => Number(textOf(await session.callTool({ name: 'list_requests', arguments: {} })));
    await session.listTools();
    const before = await listRequests();
    await session.listTools();
    await session.listTools();
    assert.equal(await listRequests(), before, 'answered from the gateway, within the minute the server gave');
    await session.callTool({ name: 'add_tool', arguments: {} });
    // The change arrives on the session's listen stream; the next list goes to the server and shows the new tool.
    await waitUntil(async () => (await session.listTools()).tools.some((tool) => tool.name === 'added'), 5_000);
    assert.ok((await listRequests()) > before);
  });

  it('cancels a call on the modern server when the client cancels it: over HTTP its exchange ends, over stdio it hears notifications/cancelled', async () => {
    for (const server of ['modern', 'modern-stdio']) {
      const session = await gateway.connect(server);
      const abort = new AbortController();
      const call = session.callTool({ name: 'slow', arguments: {} }, undefined, { signal: abort.signal });
      call.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      abort.abort('changed my mind');
      await assert.rejects(call);
      await waitUntil(async () => textOf(await session.callTool({ name: 'cancellations', arguments: {} })) === '1', 5_000);
    }
  });
});

/**
 * The other way round: a 2026-07-28 client (the SDK v2 client, pinned to that revision)
 * sends stateless requests to the gateway's front, for a 2026-07-28 server and for a
 * 2025-era one, and every guardrail applies as it does for a session client.
 */
describe("a 2026-07-28 client at the gateway's front", function () {
  this.timeout(60_000);
  let modern: { child: ChildProcess; url: string };
  let gateway: RunningGateway;

  before(async () => {
    modern = await startHttpFixture('modern-upstream');
    gateway = await startGateway([
      { id: 'modern', title: 'Modern', transport: { type: 'streamable-http', url: modern.url } },
      fixtureServer('probe', 'probe-upstream'),
      fixtureServer('legacy', 'conformance-upstream'),
    ]);
  });
  after(async () => {
    await gateway?.stop();
    modern?.child.kill();
  });

  it('uses a 2026-07-28 server under its catalog id, each request standing alone', async () => {
    const client = await connectModernClient(gateway, 'modern');
    assert.equal(client.getServerVersion()?.name, 'modern', 'server/discover names the server as the catalog does');
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((tool) => tool.name).sort(), MODERN_FIXTURE_TOOLS);
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'modern to modern' } })), 'modern to modern');
    await client.close();
  });

  it('uses a 2025-era server too: the gateway keeps the session upstream', async () => {
    const client = await connectModernClient(gateway, 'probe');
    await client.listTools();
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'modern to old' } })), 'modern to old');
    await client.close();
  });

  it("passes a modern server's input_required results to the client, which answers them itself", async () => {
    const client = await connectModernClient(gateway, 'modern', { elicitation: { form: {} } });
    const asked = answerElicitations(client, { confirm: true });
    assert.equal(textOf(await client.callTool({ name: 'confirm_echo', arguments: { text: 'x' } })), 'confirmed: x');
    assert.deepEqual(asked, ['Echo "x"?']);
    await client.close();
  });

  it("turns a 2025-era server's questions mid-call into input_required rounds, which the client answers", async () => {
    const client = await connectModernClient(gateway, 'legacy', { elicitation: { form: {} } });
    const asked = answerElicitations(client, { username: 'alice', email: 'alice@example.com' });
    await client.listTools();
    const result = await client.callTool({ name: 'test_elicitation', arguments: { message: 'Who are you?' } });
    assert.match(textOf(result), /User response: action=accept, content=.*"username":"alice"/);
    assert.deepEqual(asked, ['Who are you?']);
    const rounds = (await settledSpoolEvents(join(gateway.dir, 'state'))).filter((e) => e.tool === 'test_elicitation');
    assert.deepEqual(
      rounds.map((e) => [e.status, e.flags.includes('input-required')]),
      [
        ['ok', true],
        ['ok', false],
      ],
      'each round is a call of its own in the audit; the first says it asked for input',
    );
    await client.close();
  });

  it('refuses a changed requestState, and ends a call whose question the client cannot answer with -32021', async () => {
    const post = (params: Record<string, unknown>, capabilities: Record<string, unknown>) =>
      postModern(gateway, 'legacy', { method: 'tools/call', params }, { capabilities });
    const first = await post({ name: 'test_input_required_result_request_state', arguments: {} }, { elicitation: {} });
    assert.equal(first.body.result?.resultType, 'input_required');
    const state = String(first.body.result?.requestState);
    const key = Object.keys(first.body.result?.inputRequests as object)[0]!;
    const answers = { [key]: { action: 'accept', content: { ok: true } } };
    const tampered = await post(
      { name: 'test_input_required_result_request_state', arguments: {}, inputResponses: answers, requestState: `${state}x` },
      { elicitation: {} },
    );
    assert.equal(tampered.body.error?.code, -32602);
    const otherTool = await post(
      { name: 'test_input_required_result_tampered_state', arguments: {}, inputResponses: answers, requestState: state },
      { elicitation: {} },
    );
    assert.equal(otherTool.body.error?.code, -32602, 'a state is only good for the call it was given for');
    const answered = await post(
      { name: 'test_input_required_result_request_state', arguments: {}, inputResponses: answers, requestState: state },
      { elicitation: {} },
    );
    assert.match(JSON.stringify(answered.body.result), /state-ok/);
    const reused = await post(
      { name: 'test_input_required_result_request_state', arguments: {}, inputResponses: answers, requestState: state },
      { elicitation: {} },
    );
    assert.equal(reused.body.error?.code, -32602, 'a state is good once');
    const incapable = await post({ name: 'test_missing_capability', arguments: {} }, {});
    assert.equal(incapable.status, 400);
    assert.deepEqual([incapable.body.error?.code, incapable.body.error?.data], [-32021, { requiredCapabilities: { sampling: {} } }]);
  });

  it('applies the guardrails: secrets redacted, arguments of the wrong shape refused before the server sees them', async () => {
    const toModern = await connectModernClient(gateway, 'modern');
    const text = textOf(await toModern.callTool({ name: 'leak', arguments: {} }));
    assert.ok(!text.includes('ghp_'), text);
    assert.match(text, /REDACTED/);
    const toProbe = await connectModernClient(gateway, 'probe');
    await toProbe.listTools();
    await assert.rejects(toProbe.callTool({ name: 'echo', arguments: { text: 42 } }), /argument|schema|text/i);
    await Promise.all([toModern.close(), toProbe.close()]);
  });

  it('refuses what 2026-07-28 does not have, with the status the spec names', async () => {
    const post = (method: string, version: string) => postModern(gateway, 'probe', { id: 7, method }, { version });
    const unsupported = await post('tools/list', '2099-01-01');
    assert.equal(unsupported.status, 400);
    assert.deepEqual(
      [unsupported.body.id, unsupported.body.error?.code, unsupported.body.error?.data],
      [7, -32022, { supported: [MODERN_VERSION], requested: '2099-01-01' }],
    );
    const removed = await post('ping', MODERN_VERSION);
    assert.equal(removed.status, 404);
    assert.equal(removed.body.error?.code, -32601);
  });

  it("records each call's client era in the audit (and the server's, when it is 2026-07-28)", async () => {
    const events = await settledSpoolEvents(join(gateway.dir, 'state'));
    const flagsOf = (server: string, tool: string) => events.find((e) => e.server === server && e.tool === tool)?.flags ?? [];
    assert.ok(flagsOf('modern', 'echo').includes('client-mcp:2026-07-28'), JSON.stringify(flagsOf('modern', 'echo')));
    assert.ok(flagsOf('modern', 'echo').includes('upstream-mcp:2026-07-28'));
    assert.ok(flagsOf('probe', 'echo').includes('client-mcp:2026-07-28'));
    assert.ok(!flagsOf('probe', 'echo').includes('upstream-mcp:2026-07-28'));
    const leak = events.find((e) => e.server === 'modern' && e.tool === 'leak');
    assert.equal(leak?.redactions['github-token'] ?? 0, 1, 'the redaction is counted');
    const refused = events.find((e) => e.server === 'probe' && e.tool === 'echo' && e.status === 'denied');
    assert.ok(refused, 'the refused call is audited');
  });
});

/**
 * Changes a 2026-07-28 server announces only on `subscriptions/listen` streams reach a
 * 2025-era client as the notifications it knows: list changes, and updates of the resources
 * it subscribed to with `resources/subscribe` (which the server no longer has as a method).
 */
describe('list changes and resource updates from a 2026-07-28 server, for a 2025-era client', function () {
  this.timeout(60_000);
  let modern: { child: ChildProcess; url: string };
  let gateway: RunningGateway;

  before(async () => {
    modern = await startHttpFixture('modern-conformance-upstream');
    gateway = await startGateway([{ id: 'conformance', transport: { type: 'streamable-http', url: modern.url } }]);
  });
  after(async () => {
    await gateway?.stop();
    modern?.child.kill();
  });

  it('relays list changes, and updates of subscribed resources until unsubscribed', async () => {
    const client = await gateway.connect('conformance');
    const heard: string[] = [];
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void heard.push('tools'));
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void heard.push(`updated ${n.params.uri}`));
    assert.equal(client.getServerCapabilities()?.resources?.subscribe, true, 'the server offers subscriptions, so the gateway does');

    await client.subscribeResource({ uri: 'test://watched-resource' });
    await client.callTool({ name: 'test_update_watched_resource', arguments: {} });
    await waitUntil(() => heard.includes('updated test://watched-resource'), 10_000);
    await client.callTool({ name: 'test_trigger_tool_change', arguments: {} });
    await waitUntil(() => heard.includes('tools'), 10_000);

    // Unsubscribed: an update is no longer relayed. Both changes travel the same stream in order,
    // so once the tool change that follows it has arrived, the update would have too.
    await client.unsubscribeResource({ uri: 'test://watched-resource' });
    heard.length = 0;
    await client.callTool({ name: 'test_update_watched_resource', arguments: {} });
    await client.callTool({ name: 'test_trigger_tool_change', arguments: {} });
    await waitUntil(() => heard.includes('tools'), 10_000);
    assert.deepEqual(heard, ['tools']);
  });
});
