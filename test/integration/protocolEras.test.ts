/**
 * MCP 2026-07-28 servers through the gateway (issue #13, first part): a real modern-only
 * server (the official SDK v2, test/fixtures/modern-upstream.ts) that refuses 2025-era
 * clients is reached by a 2025-era client (the SDK 1.x client, as VS Code is) through the
 * gateway, which finds the server's era with `server/discover`, keeps the client's session
 * itself and sends each request in the modern form; the guardrails apply as for any server,
 * and the audit records the era.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { fixtureServer, FIXTURES, NODE, settledSpoolEvents, startGateway, textOf, type RunningGateway } from '../support/gatewayHarness';

async function startModernServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(NODE, [join(FIXTURES, 'modern-upstream.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('modern-upstream did not start in 15 s')), 15_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const found = /listening on (http:\/\/\S+)/.exec(line)?.[1];
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.once('exit', (code) => reject(new Error(`modern-upstream exited with ${code}`)));
  });
  return { child, url };
}

describe('a 2026-07-28 server through the gateway, for a 2025-era client', function () {
  this.timeout(60_000);
  let modern: { child: ChildProcess; url: string };
  let gateway: RunningGateway;
  let client: Client;

  before(async () => {
    modern = await startModernServer();
    gateway = await startGateway(
      [
        { id: 'modern', title: 'Modern', transport: { type: 'streamable-http', url: modern.url } },
        fixtureServer('probe', 'probe-upstream'),
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
    assert.deepEqual(tools.map((tool) => tool.name).sort(), ['confirm_echo', 'echo', 'leak']);
    const result = await client.callTool({ name: 'echo', arguments: { text: 'across the eras' } });
    assert.equal(textOf(result), 'across the eras');
    assert.ok(!('resultType' in result) && !('ttlMs' in result) && !('cacheScope' in result), JSON.stringify(result));
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
});
