/**
 * The whole MCP surface through the real gateway process to real upstream servers from the
 * npm registry (server-everything over stdio, Streamable HTTP and legacy SSE;
 * server-filesystem; server-memory) and our probe fixture.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import {
  BIN,
  fixtureServer,
  freePort,
  startEverythingHttp,
  startGateway,
  stdioServer,
  textOf,
  type RunningGateway,
} from '../support/gatewayHarness';

describe('gateway relays the MCP surface', function () {
  this.timeout(60_000);
  let gateway: RunningGateway;
  let httpEverything: ChildProcess;
  let sseEverything: ChildProcess;
  const filesDir = mkdtempSync(join(tmpdir(), 'gatehouse-files-'));
  writeFileSync(join(filesDir, 'hello.txt'), 'hello from the filesystem server\n');

  before(async () => {
    const [httpPort, ssePort] = [await freePort(), await freePort()];
    httpEverything = await startEverythingHttp(httpPort, 'streamableHttp');
    sseEverything = await startEverythingHttp(ssePort, 'sse');
    gateway = await startGateway(
      [
        stdioServer('everything', `${BIN}/mcp-server-everything`, ['stdio']),
        { id: 'everything-http', transport: { type: 'streamable-http', url: `http://127.0.0.1:${httpPort}/mcp` } },
        { id: 'everything-sse', transport: { type: 'sse', url: `http://127.0.0.1:${ssePort}/sse` } },
        stdioServer('files', `${BIN}/mcp-server-filesystem`, [filesDir]),
        stdioServer('memory', `${BIN}/mcp-server-memory`, [], { env: { MEMORY_FILE_PATH: join(filesDir, 'memory.jsonl') } }),
        fixtureServer('probe', 'probe-upstream'),
      ],
      { gateway: { upstreamStart: 'eager' } },
    );
  });

  after(async () => {
    await gateway?.stop();
    httpEverything?.kill();
    sseEverything?.kill();
  });

  it('reports every upstream ready in its ready line, without the secret', () => {
    assert.deepEqual(
      gateway.ready.servers.map((s) => [s.id, s.state]),
      [
        ['everything', 'ready'],
        ['everything-http', 'ready'],
        ['everything-sse', 'ready'],
        ['files', 'ready'],
        ['memory', 'ready'],
        ['probe', 'ready'],
      ],
    );
    assert.equal(gateway.ready.launchSecret.delivery, 'file');
    assert.ok(!gateway.stdout().includes(gateway.secret));
    assert.ok(!gateway.stderr().includes(gateway.secret));
  });

  for (const id of ['everything', 'everything-http', 'everything-sse']) {
    it(`${id}: initialize names the server by its catalog id and calls tools`, async () => {
      const client = await gateway.connect(id);
      assert.equal(client.getServerVersion()?.name, id, 'VS Code names tools after serverInfo.name');
      assert.ok(client.getServerCapabilities()?.tools);
      const tools = await client.listTools();
      assert.ok(tools.tools.some((t) => t.name === 'echo'));
      const echoed = await client.callTool({ name: 'echo', arguments: { message: `hi via ${id}` } });
      assert.match(textOf(echoed), new RegExp(`hi via ${id}`));
      const sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } });
      assert.match(textOf(sum), /42/);
      await client.ping();
    });
  }

  it('relays resources: list, read, templates, subscribe and unsubscribe', async () => {
    const client = await gateway.connect('everything');
    const { resources } = await client.listResources();
    assert.ok(resources.length > 0);
    const read = await client.readResource({ uri: resources[0]!.uri });
    assert.equal(read.contents[0]?.uri, resources[0]!.uri);
    const { resourceTemplates } = await client.listResourceTemplates();
    assert.ok(resourceTemplates.some((t) => t.uriTemplate.includes('{resourceId}')));
    const dynamic = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
    assert.ok(dynamic.contents.length === 1);
    assert.deepEqual(await client.subscribeResource({ uri: resources[0]!.uri }), {});
    assert.deepEqual(await client.unsubscribeResource({ uri: resources[0]!.uri }), {});
  });

  it('relays prompts and completion', async () => {
    const client = await gateway.connect('everything');
    const { prompts } = await client.listPrompts();
    assert.ok(prompts.some((p) => p.name === 'args-prompt'));
    const prompt = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Lisbon' } });
    assert.match(JSON.stringify(prompt.messages), /Lisbon/);
    const completion = await client.complete({
      ref: { type: 'ref/prompt', name: 'completable-prompt' },
      argument: { name: 'department', value: 'E' },
    });
    assert.ok(completion.completion.values.includes('Engineering'));
  });

  it('relays logging/setLevel', async () => {
    const client = await gateway.connect('probe');
    assert.deepEqual(await client.setLoggingLevel('debug'), {});
  });

  it('relays progress notifications for a long-running call', async () => {
    const client = await gateway.connect('everything');
    const progress: number[] = [];
    const result = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    assert.match(textOf(result), /completed/i);
    assert.deepEqual(progress, [1, 2, 3]);
  });

  it('relays sampling, elicitation and roots to a client that declared them', async () => {
    const client = await gateway.connect('everything', {
      capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } },
    });
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      model: 'test-model',
      role: 'assistant',
      content: { type: 'text', text: 'sampled answer' },
    }));
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { color: 'blue' } }));
    client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: 'file:///work/project', name: 'project' }] }));
    const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hello' } });
    assert.match(JSON.stringify(sampled), /sampled answer/);
    const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.match(JSON.stringify(elicited), /accept/);
    const roots = await client.callTool({ name: 'get-roots-list', arguments: {} });
    assert.match(JSON.stringify(roots), /file:\/\/\/work\/project/);
  });

  it('tells the upstream only what the client declared: no sampling or roots tools without them', async () => {
    const client = await gateway.connect('everything', { capabilities: {} });
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(!names.includes('trigger-sampling-request'), 'upstream must not believe the client can sample');
    assert.ok(!names.includes('get-roots-list'));
  });

  it('carries a client cancellation to the upstream', async () => {
    const client = await gateway.connect('probe');
    const controller = new AbortController();
    const call = client.callTool({ name: 'sleep', arguments: { ms: 20_000 } }, undefined, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 300));
    controller.abort('user cancelled');
    await assert.rejects(call);
    const deadline = Date.now() + 5_000;
    let seen = '0';
    while (Date.now() < deadline && seen === '0') {
      seen = textOf(await client.callTool({ name: 'cancellations', arguments: {} }));
      if (seen === '0') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(seen, '1', 'the upstream saw exactly one cancellation');
  });

  it('gives stdio upstreams only the allowlisted environment', async () => {
    const client = await gateway.connect('probe');
    const names = JSON.parse(textOf(await client.callTool({ name: 'env', arguments: {} }))) as string[];
    assert.deepEqual(
      names.filter((n) => !['PATH', 'HOME'].includes(n)),
      [],
      `unexpected variables: ${names.join(', ')}`,
    );
  });

  it('works with server-filesystem', async () => {
    const client = await gateway.connect('files');
    const listing = await client.callTool({ name: 'list_directory', arguments: { path: filesDir } });
    assert.match(textOf(listing), /hello\.txt/);
    const read = await client.callTool({ name: 'read_text_file', arguments: { path: join(filesDir, 'hello.txt') } });
    assert.match(textOf(read), /hello from the filesystem server/);
  });

  it('works with server-memory', async () => {
    const client = await gateway.connect('memory');
    await client.callTool({
      name: 'create_entities',
      arguments: { entities: [{ name: 'Gatehouse', entityType: 'project', observations: ['relays MCP'] }] },
    });
    const graph = await client.callTool({ name: 'read_graph', arguments: {} });
    assert.match(textOf(graph), /Gatehouse/);
  });

  it('keeps sessions apart: two clients on one server each get their own upstream session', async () => {
    const a = await gateway.connect('probe');
    const b = await gateway.connect('probe');
    const [ra, rb] = await Promise.all([
      a.callTool({ name: 'echo', arguments: { text: 'from a' } }),
      b.callTool({ name: 'echo', arguments: { text: 'from b' } }),
    ]);
    assert.equal(textOf(ra), 'from a');
    assert.equal(textOf(rb), 'from b');
  });

  it('delivers upstream notifications: log messages and resource updates', async () => {
    const client = await gateway.connect('everything');
    const logs: unknown[] = [];
    const updates: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(n.params);
    });
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    await client.setLoggingLevel('debug');
    const { resources } = await client.listResources();
    await client.subscribeResource({ uri: resources[0]!.uri });
    await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (logs.length === 0 || updates.length === 0)) await new Promise((r) => setTimeout(r, 100));
    assert.ok(logs.length > 0, 'log messages arrived');
    assert.ok(updates.includes(resources[0]!.uri), 'resource update arrived');
  });
});
