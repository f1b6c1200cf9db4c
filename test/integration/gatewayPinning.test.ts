/**
 * Tool pinning through the real gateway: a tool whose definition changes after it was
 * approved (a "rug pull") disappears from tools/list and is refused, and the approval
 * survives a gateway restart. Uses the probe fixture's `weather` / `rug-pull` tools.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { parse } from 'yaml';
import { pinOfTool } from '../../common/policy/toolPins';
import { BIN, FIXTURES, fixtureServer, NODE, REPO, settledSpoolEvents, startGateway, stdioServer, textOf } from '../support/gatewayHarness';

describe('tool pinning (rug pulls)', function () {
  this.timeout(60_000);

  it('hides a tool whose description changed after first use, and refuses to call it', async () => {
    const gateway = await startGateway([fixtureServer('probe', 'probe-upstream')]);
    try {
      const client = await gateway.connect('probe');
      assert.ok((await client.listTools()).tools.some((t) => t.name === 'weather'));
      assert.equal(textOf(await client.callTool({ name: 'weather', arguments: { city: 'Oslo' } })), 'Sunny in Oslo');
      let changed = false;
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        changed = true;
      });
      await client.callTool({ name: 'rug-pull', arguments: {} });
      const deadline = Date.now() + 5_000;
      while (!changed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(changed, 'the upstream announced the change');
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(!names.includes('weather'), 'the changed tool is hidden');
      assert.ok(names.includes('echo'), 'unchanged tools stay');
      await assert.rejects(client.callTool({ name: 'weather', arguments: { city: 'Oslo' } }), /changed since it was approved/);
      assert.match(gateway.stderr(), /tool definition changed since approval/);
      await client.listTools();
      const events = (await settledSpoolEvents(join(gateway.dir, 'state'))).filter(
        (e) => e.tool === 'weather' && e.flags.includes('tool-definition-changed'),
      );
      assert.deepEqual(
        events.map((e) => [e.method, e.decision]),
        [
          ['tools/list', 'deny'],
          ['tools/call', 'deny'],
        ],
        'the change is audited once when noticed, and the refused call with it',
      );
    } finally {
      await gateway.stop();
    }
  });

  it('refuses arguments that do not fit the approved input schema (no type games with policy conditions)', async () => {
    const gateway = await startGateway([fixtureServer('probe', 'probe-upstream')]);
    try {
      const client = await gateway.connect('probe');
      await client.listTools();
      await assert.rejects(
        client.callTool({ name: 'echo', arguments: { text: 5 } }),
        /do not match the tool's approved input schema: .*text.*string/,
      );
      await assert.rejects(client.callTool({ name: 'sleep', arguments: { ms: '10' } }), /approved input schema/);
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'fine' } })), 'fine');
    } finally {
      await gateway.stop();
    }
  });

  it('tells clients the risk the gateway believes, not what an untrusted server claims', async () => {
    const gateway = await startGateway([
      { ...stdioServer('everything', join(BIN, 'mcp-server-everything'), ['stdio']) },
      {
        ...stdioServer('everything-trusted', join(BIN, 'mcp-server-everything'), ['stdio']),
        trusted: true,
        tools: { echo: { risk: 'destructive' } },
      },
    ]);
    try {
      const untrusted = (await (await gateway.connect('everything')).listTools()).tools;
      assert.ok(
        untrusted.every((t) => t.annotations?.readOnlyHint === false && t.annotations?.destructiveHint === true),
        'an untrusted readOnlyHint never reaches the client',
      );
      const trusted = (await (await gateway.connect('everything-trusted')).listTools()).tools;
      const sum = trusted.find((t) => t.name === 'get-sum')!;
      assert.equal(sum.annotations?.readOnlyHint, true, 'a trusted server is believed');
      assert.equal(trusted.find((t) => t.name === 'echo')!.annotations?.destructiveHint, true, 'the policy wins over the server');
      assert.match(gateway.stderr(), /tool name offered by more than one server.*"tool":"echo"/);
    } finally {
      await gateway.stop();
    }
  });

  it("flags shadowed tool names and descriptions that steer the model to another server's tool, in the audit", async () => {
    const gateway = await startGateway([
      stdioServer('everything', join(BIN, 'mcp-server-everything'), ['stdio']),
      fixtureServer('probe', 'probe-upstream', ['--mention', 'get-sum']),
    ]);
    try {
      await (await gateway.connect('everything')).listTools();
      const probe = await gateway.connect('probe');
      assert.ok(
        (await probe.listTools()).tools.some((t) => t.name === 'helper'),
        'advisory: the flagged tool stays listed',
      );
      await probe.listTools();
      await probe.callTool({ name: 'echo', arguments: { text: 'which echo?' } });
      const events = await settledSpoolEvents(join(gateway.dir, 'state'));
      const helper = events.filter((e) => e.tool === 'helper');
      assert.equal(helper.length, 1, 'a flagged definition is audited once');
      assert.equal(helper[0]!.method, 'tools/list');
      assert.deepEqual(helper[0]!.flags, ['cross-server-reference']);
      const echo = events.find((e) => e.tool === 'echo' && e.method === 'tools/call')!;
      assert.deepEqual(echo.flags, ['tool-name-collision'], 'echo is offered by both servers');
    } finally {
      await gateway.stop();
    }
  });

  it('keeps first-use approvals across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pins-'));
    const first = await startGateway([fixtureServer('probe', 'probe-upstream')], { dir });
    const client = await first.connect('probe');
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'weather'));
    await first.stop(true);
    // Same state folder, but the upstream now ships the rewritten description from the start.
    const second = await startGateway([fixtureServer('probe', 'probe-upstream', ['--rug-pulled'])], { dir });
    try {
      const names = (await (await second.connect('probe')).listTools()).tools.map((t) => t.name);
      assert.ok(!names.includes('weather'), 'the approval from the first run still applies');
      assert.ok(names.includes('echo'));
    } finally {
      await second.stop();
    }
  });

  it('`gatehouse pins` prints the pins an admin approves, matching what the gateway computes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pins-cli-'));
    const policy = join(dir, 'org.yaml');
    writeFileSync(
      policy,
      `version: 1
org: t
admins: [a]
groups: [{ id: a, match: [{ user: admin@example.com }] }]
servers:
  - id: probe
    title: Probe
    transport: { type: stdio, command: ${NODE}, args: [${join(FIXTURES, 'probe-upstream.mjs')}] }
`,
    );
    const output = execFileSync(NODE, [join(REPO, 'dist/gatehouse.js'), 'pins', policy, 'probe'], { encoding: 'utf8' });
    const printed = (parse(output) as { tools: Record<string, { pin: string }> }).tools;
    const gateway = await startGateway([fixtureServer('probe', 'probe-upstream')]);
    try {
      const tools = (await (await gateway.connect('probe')).listTools()).tools;
      assert.ok(tools.length >= 5);
      // Pins approve the upstream's own definitions. The probe declares no annotations; the
      // ones clients see are the gateway's risk hints, so they are left out here.
      for (const { annotations: _gatewayHints, ...upstreamDefinition } of tools) {
        assert.equal(printed[upstreamDefinition.name]?.pin, pinOfTool(upstreamDefinition), upstreamDefinition.name);
      }
    } finally {
      await gateway.stop();
    }
  });
});
