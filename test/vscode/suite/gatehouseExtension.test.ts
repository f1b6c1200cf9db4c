/**
 * Gatehouse inside a real VS Code (code-server's extension host): the extension activates,
 * spawns the gateway over its control channel, registers its MCP server definitions, and
 * VS Code's own MCP client initializes, lists and calls tools through the gateway. The
 * runner (test/vscode/runInCodeServer.ts) points the extension at a local gateway config
 * with our probe upstream, and takes the screenshots this suite asks for.
 */
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { GatehouseApi } from '../../../extension/api';
import type { GatewayReadyLine } from '../../../common/gatewayReady';
import { spoolEvents } from '../../support/spoolEvents';

const SERVER = 'probe';

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Asks the runner (outside VS Code) for a screenshot, then gives it time to take it. */
async function screenshot(name: string): Promise<void> {
  console.log(`GATEHOUSE_SCREENSHOT ${name}`);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
}

function textOf(result: vscode.LanguageModelToolResult): string {
  return result.content.map((part) => (part instanceof vscode.LanguageModelTextPart ? part.value : '')).join('');
}

describe('Gatehouse inside VS Code', () => {
  let api: GatehouseApi;
  let ready: GatewayReadyLine;
  let echoTool: vscode.LanguageModelToolInformation;

  before(async () => {
    const extension = vscode.extensions.getExtension<GatehouseApi>('gatehouse.gatehouse');
    assert.ok(extension, 'the Gatehouse extension is installed');
    api = await extension.activate();
    ready = await api.gatewayReady();
  });

  it('spawns the gateway with VS Code\'s runtime and serves the configured catalog', () => {
    assert.equal(ready.policy.mode, 'unmanaged');
    assert.deepEqual(ready.servers.map((server) => [server.id, server.state]), [[SERVER, 'ready']]);
    assert.equal(ready.launchSecret.delivery, 'stdin', 'the launch secret travelled over the control channel');
  });

  it('lets VS Code start the server through the gateway and list its tools', async () => {
    // The definitions reach the workbench asynchronously after the gateway is ready; starting
    // an id the workbench does not know yet is a silent no-op, so ask until the tools are live.
    echoTool = await waitFor('the echo tool in vscode.lm.tools', async () => {
      await vscode.commands.executeCommand('workbench.mcp.startServer', `gatehouse.gatehouse/${SERVER}`, { waitForLiveTools: true });
      return vscode.lm.tools.find((tool) => tool.tags.includes('mcp') && tool.name.endsWith('_echo'));
    });
    assert.ok(vscode.lm.tools.some((tool) => tool.name.endsWith('_weather')), 'the other tools are there too');
  });

  it('answers vscode.lm.invokeTool with the upstream\'s result', async () => {
    const result = await vscode.lm.invokeTool(echoTool.name, { input: { text: 'hello from VS Code' }, toolInvocationToken: undefined });
    assert.equal(textOf(result), 'hello from VS Code');
  });

  it('records the call in the gateway\'s audit, with VS Code as the client', async () => {
    const event = await waitFor('the audit event', () => spoolEvents(api.stateDir).findLast((e) => e.tool === 'echo'));
    assert.equal(event.server, SERVER);
    assert.equal(event.decision, 'allow');
    assert.equal(event.status, 'ok');
    assert.notEqual(event.client.name, 'unknown', `VS Code's MCP client named itself (${event.client.name})`);
  });

  it('refuses arguments that do not fit the tool\'s approved schema, with the reason', async () => {
    let outcome: string;
    try {
      outcome = textOf(await vscode.lm.invokeTool(echoTool.name, { input: { text: 42 }, toolInvocationToken: undefined }));
    } catch (error) {
      outcome = (error as Error).message;
    }
    assert.match(outcome, /do not match the tool's approved input schema/, 'the gateway\'s refusal reaches VS Code');
  });

  it('shows the approved servers in the Gatehouse sidebar', async () => {
    await vscode.commands.executeCommand('workbench.view.extension.gatehouse');
    await screenshot('sidebar');
  });
});
