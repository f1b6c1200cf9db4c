/**
 * Gatehouse inside a real VS Code (code-server's extension host): the extension activates,
 * spawns the gateway over its control channel, registers its MCP server definitions, and
 * VS Code's own MCP client initializes, lists and calls tools through the gateway. The
 * runner (test/vscode/runInCodeServer.ts) runs a real local IdP and policy server, points
 * the extension at them (managed mode, user alice), takes the screenshots this suite asks
 * for, and answers the Confirm webview as a person would when told to.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { GatehouseApi } from '../../../extension/api';
import type { GatewayReadyLine } from '../../../common/gatewayReady';
import { spoolEvents } from '../../support/spoolEvents';
import { describeError } from '../../../common/log/logger';

const SERVER = 'probe';
/** The runner seeds the gateway's spool with this many older events before VS Code starts. */
const SEEDED_EVENTS = 100_000;
const serverNode = { kind: 'server', server: { id: SERVER } };

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

/** Enables a catalog server and has VS Code start it until its tool `name` is live (the definitions arrive asynchronously). */
async function enabledTool(serverId: string, name: string): Promise<vscode.LanguageModelToolInformation> {
  await vscode.commands.executeCommand('gatehouse.server.enable', { kind: 'server', server: { id: serverId } });
  return waitFor(`the ${serverId} ${name} tool in vscode.lm.tools`, async () => {
    await vscode.commands.executeCommand('workbench.mcp.startServer', `gatehouse.gatehouse/${serverId}`, { waitForLiveTools: true });
    return vscode.lm.tools.find((tool) => tool.tags.includes('mcp') && tool.name.includes(serverId) && tool.name.endsWith(`_${name}`));
  });
}

function textOf(result: vscode.LanguageModelToolResult): string {
  return result.content.map((part) => (part instanceof vscode.LanguageModelTextPart ? part.value : '')).join('');
}

describe('Gatehouse inside VS Code', () => {
  let api: GatehouseApi;
  let ready: GatewayReadyLine;
  let echoTool: vscode.LanguageModelToolInformation;

  before(async () => {
    // The Chat view would take a third of the screenshots' width.
    await vscode.commands.executeCommand('workbench.action.closeAuxiliaryBar').then(undefined, () => undefined);
    const extension = vscode.extensions.getExtension<GatehouseApi>('gatehouse.gatehouse');
    assert.ok(extension, 'the Gatehouse extension is installed');
    api = await extension.activate();
    console.log(`GATEHOUSE_METRIC activation_ms ${api.activationMs.toFixed(2)}`);
    // Nobody is signed in yet: alice signs in with the org's IdP in the browser (the runner types her name there).
    const signInStarted = performance.now();
    console.log('GATEHOUSE_SIGNIN alice');
    await api.signIn();
    console.log(`GATEHOUSE_METRIC sign_in_ms ${(performance.now() - signInStarted).toFixed(0)}`);
    const started = performance.now();
    ready = await api.gatewayReady();
    console.log(`GATEHOUSE_METRIC gateway_ready_ms ${(performance.now() - started).toFixed(1)}`);
  });

  it("signs alice in with the org's IdP in the browser; her gateway takes the token from that sign-in", () => {
    assert.equal(api.account(), 'alice@example.com');
    assert.equal(ready.policy.mode, 'managed', 'the policy server accepted the token from VS Code sign-in');
    assert.equal(vscode.workspace.getConfiguration('gatehouse').get('policyServer.tokenFile'), '', 'no token file is involved');
  });

  it("spawns the gateway with VS Code's runtime and serves the user's policy catalog", () => {
    assert.equal(ready.policy.mode, 'managed');
    assert.equal(ready.policy.version, 1);
    assert.deepEqual(
      ready.servers.map((server) => [server.id, server.state]),
      [
        [SERVER, 'idle'],
        ['notes', 'idle'],
        ['modern', 'idle'],
        ['relayed', 'idle'],
      ],
      'nothing starts until it is used (the OAuth server asks alice to sign in then)',
    );
    assert.deepEqual(
      ready.blocked?.map((server) => [server.id, server.title]),
      [['vault', 'Secrets vault']],
      'what the policy does not let alice use is named, with why',
    );
    assert.match(ready.blocked![0]!.reason, /No rule in the org policy lets you use it/);
    assert.equal(ready.launchSecret.delivery, 'stdin', 'the launch secret travelled over the control channel');
    assert.equal(ready.listen.type, 'unix', 'VS Code 1.117 reaches servers on unix sockets, so the gateway listens on one');
    if (ready.listen.type === 'unix') assert.equal(statSync(ready.listen.socketPath).mode & 0o777, 0o600, "the socket is the user's alone");
  });

  it('offers a server to VS Code only once the developer enables it', async () => {
    assert.equal(api.isEnabled(SERVER), false, 'approved servers start available, not enabled');
    await vscode.commands.executeCommand('workbench.mcp.startServer', `gatehouse.gatehouse/${SERVER}`, { waitForLiveTools: true });
    assert.ok(!vscode.lm.tools.some((tool) => tool.name.endsWith('_echo')), 'a server that is not enabled has no tools in VS Code');
    await vscode.commands.executeCommand('gatehouse.server.enable', serverNode);
    assert.equal(api.isEnabled(SERVER), true);
  });

  it('lets VS Code start the server through the gateway and list its tools', async () => {
    // The definitions reach the workbench asynchronously after the gateway is ready; starting
    // an id the workbench does not know yet is a silent no-op, so ask until the tools are live.
    echoTool = await waitFor('the echo tool in vscode.lm.tools', async () => {
      await vscode.commands.executeCommand('workbench.mcp.startServer', `gatehouse.gatehouse/${SERVER}`, { waitForLiveTools: true });
      return vscode.lm.tools.find((tool) => tool.tags.includes('mcp') && tool.name.endsWith('_echo'));
    });
    assert.ok(
      vscode.lm.tools.some((tool) => tool.name.endsWith('_weather')),
      'the other tools are there too',
    );
    const started = await api.gatewayReady();
    assert.deepEqual(
      started.servers.map((server) => [server.id, server.state]),
      [
        [SERVER, 'ready'],
        ['notes', 'idle'],
        ['modern', 'idle'],
        ['relayed', 'idle'],
      ],
      'the gateway started the server VS Code asked for, and only that one',
    );
  });

  it("answers vscode.lm.invokeTool with the upstream's result", async () => {
    const result = await vscode.lm.invokeTool(echoTool.name, { input: { text: 'hello from VS Code' }, toolInvocationToken: undefined });
    assert.equal(textOf(result), 'hello from VS Code');
  });

  it("records the call in the gateway's audit, with VS Code as the client", async () => {
    const event = await waitFor('the audit event', () => spoolEvents(api.stateDir).findLast((e) => e.tool === 'echo'));
    assert.equal(event.server, SERVER);
    assert.equal(event.decision, 'allow');
    assert.equal(event.rule, 'engineers-probe');
    assert.equal(event.user, 'alice');
    assert.equal(event.status, 'ok');
    assert.notEqual(event.client.name, 'unknown', `VS Code's MCP client named itself (${event.client.name})`);
  });

  it("refuses arguments that do not fit the tool's approved schema, with the reason", async () => {
    let outcome: string;
    try {
      outcome = textOf(await vscode.lm.invokeTool(echoTool.name, { input: { text: 42 }, toolInvocationToken: undefined }));
    } catch (error) {
      outcome = describeError(error);
    }
    assert.match(outcome, /do not match the tool's approved input schema/, "the gateway's refusal reaches VS Code");
  });

  it('shows each tool in the sidebar with what the gateway believes: risk and whether it needs confirmation', async () => {
    const tools = await waitFor("the sidebar's tools", () => api.toolsOf(SERVER));
    const env = tools.find((tool) => tool.name === 'env');
    const echo = tools.find((tool) => tool.name === 'echo');
    assert.deepEqual([env?.policy, echo?.policy], ['confirm', 'allow']);
    assert.equal(echo?.risk, 'destructive', 'no hints from an untrusted server: destructive');
    assert.ok(!tools.some((tool) => tool.name === 'crash'), 'denied tools are not shown');
  });

  it('does not offer tools the policy denies or no rule allows', async () => {
    assert.ok(!vscode.lm.tools.some((tool) => tool.name.endsWith('_crash')), 'the denied tool is not offered');
    assert.ok(!vscode.lm.tools.some((tool) => tool.name.endsWith('_sleep')), 'nor one no rule allows');
  });

  it('holds a call that needs confirmation until the developer approves it in the Confirm webview', async () => {
    const envTool = await waitFor('the env tool', () =>
      vscode.lm.tools.find((tool) => tool.tags.includes('mcp') && tool.name.endsWith('_env')),
    );
    console.log('GATEHOUSE_CONFIRM approve');
    const result = await vscode.lm.invokeTool(envTool.name, { input: {}, toolInvocationToken: undefined });
    assert.match(textOf(result), /PATH/, 'the approved call ran and answered');
    const event = await waitFor('the approved call in the audit', () =>
      spoolEvents(api.stateDir).findLast((e) => e.tool === 'env' && e.decision === 'confirm-approved'),
    );
    assert.equal(event.reviewer, 'alice');
  });

  it('refuses the call when the developer denies it in the Confirm webview', async () => {
    const envTool = vscode.lm.tools.find((tool) => tool.tags.includes('mcp') && tool.name.endsWith('_env'))!;
    console.log('GATEHOUSE_CONFIRM deny');
    let outcome: string;
    try {
      outcome = textOf(await vscode.lm.invokeTool(envTool.name, { input: {}, toolInvocationToken: undefined }));
    } catch (error) {
      outcome = describeError(error);
    }
    assert.match(outcome, /env-needs-confirmation.*You denied it/);
    await waitFor('the denied call in the audit', () =>
      spoolEvents(api.stateDir).findLast((e) => e.tool === 'env' && e.decision === 'confirm-denied'),
    );
  });

  it('shows a teammate\'s call waiting for review in "Pending reviews", and approves it from there', async () => {
    await vscode.commands.executeCommand('workbench.view.extension.gatehouse');
    await vscode.commands.executeCommand('gatehouse.reviews.refresh');
    const review = await waitFor("bob's review", () => api.pendingReviews().find((r) => r.requester.sub === 'bob'));
    assert.equal(review.tool, 'pid');
    assert.equal(review.rule, 'pid-reviewed');
    assert.deepEqual(review.arguments, { why: 'debugging a hang' });
    await screenshot('reviews');
    await vscode.commands.executeCommand('gatehouse.reviews.approve', review);
    assert.ok(!api.pendingReviews().some((r) => r.id === review.id), 'a decided review leaves the list');
  });

  it('shows the approved servers in the Gatehouse sidebar', async () => {
    await vscode.commands.executeCommand('workbench.view.extension.gatehouse');
    await screenshot('sidebar');
  });

  it("shows the whole audit trail in the Audit view: the seeded history and this run's calls, live", async () => {
    const live = () => api.auditEvents().filter((event) => !event.rule?.startsWith('seeded-'));
    await waitFor("this run's calls in the trail", () => (live().some((e) => e.decision === 'confirm-denied') ? true : undefined));
    const opened = performance.now();
    await vscode.commands.executeCommand('gatehouse.showAudit');
    const report = await waitFor("the Audit view's first rendering", () => {
      const seen = api.auditView();
      return seen && seen.total === api.auditEvents().length ? seen : undefined;
    });
    console.log(`GATEHOUSE_METRIC audit_view_open_ms ${(performance.now() - opened).toFixed(0)}`);
    console.log(`GATEHOUSE_METRIC audit_view_first_rows_ms ${report.firstRowsMs?.toFixed(0)}`);
    console.log(`GATEHOUSE_METRIC audit_filter_ms ${report.filterMs.toFixed(1)}`);
    assert.equal(api.auditEvents().length, SEEDED_EVENTS, 'the newest 100,000 events are kept');
    assert.ok(live().length >= 4, "this run's calls are there beside the history");
    assert.equal(report.shown, report.total, 'no filter: every event listed');
    await screenshot('audit');
    // A new call streams in while the view is open.
    const echoCalls = () => api.auditEvents().filter((e) => e.tool === 'echo' && !e.rule?.startsWith('seeded-')).length;
    const before = echoCalls();
    await vscode.lm.invokeTool(echoTool.name, { input: { text: 'while the Audit view is open' }, toolInvocationToken: undefined });
    await waitFor('the new call in the open view', () =>
      echoCalls() > before && api.auditView()?.total === api.auditEvents().length ? true : undefined,
    );
  });

  it('exports the rows a filter shows, as JSONL and as CSV', async () => {
    const filter = { server: SERVER, decision: 'confirm-approved' };
    const expected = api.auditEvents().filter((e) => e.server === SERVER && e.decision === 'confirm-approved');
    const jsonl = vscode.Uri.file(join(tmpdir(), `gatehouse-audit-${process.pid}.jsonl`));
    const csv = vscode.Uri.file(join(tmpdir(), `gatehouse-audit-${process.pid}.csv`));
    assert.equal(await vscode.commands.executeCommand('gatehouse.audit.export', 'jsonl', jsonl, filter), expected.length);
    assert.equal(await vscode.commands.executeCommand('gatehouse.audit.export', 'csv', csv, filter), expected.length);
    const lines = readFileSync(jsonl.fsPath, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string });
    assert.deepEqual(
      lines.map((e) => e.id),
      expected.map((e) => e.id),
    );
    const rows = readFileSync(csv.fsPath, 'utf8').trim().split('\r\n');
    assert.equal(rows.length, expected.length + 1, 'a header and one row per event');
    assert.ok(
      expected.some((e) => e.reviewer === 'alice' && !e.rule?.startsWith('seeded-')),
      "this run's approved env call is among them",
    );
  });

  it("shows each server's credential and use in the Scopes view, without any credential", async () => {
    await vscode.commands.executeCommand('gatehouse.showScopes', serverNode);
    const row = api.scopes().find((r) => r.server === SERVER);
    assert.ok(row);
    assert.deepEqual([row.enabled, row.credential, row.title], [true, 'none', 'Probe']);
    assert.ok(row.calls > 0 && row.lastUse, 'last use comes from the audit trail');
    await screenshot('scopes');
  });

  it('signs alice in to an OAuth-protected server when VS Code first starts it: asked in words, the IdP opened in the browser', async () => {
    const notesNode = { kind: 'server', server: { id: 'notes' } };
    await vscode.commands.executeCommand('gatehouse.server.enable', notesNode);
    console.log('GATEHOUSE_UPSTREAM_SIGNIN alice Notes');
    const whoami = await waitFor(
      'the notes tools in vscode.lm.tools',
      async () => {
        await vscode.commands.executeCommand('workbench.mcp.startServer', 'gatehouse.gatehouse/notes', { waitForLiveTools: true });
        return vscode.lm.tools.find((tool) => tool.tags.includes('mcp') && tool.name.endsWith('_whoami'));
      },
      120_000,
    );
    const result = await vscode.lm.invokeTool(whoami.name, { input: {}, toolInvocationToken: undefined });
    assert.match(textOf(result), /token subject: alice/, "the server got alice's own token, from the gateway");
    await api.refreshScopes();
    const row = api.scopes().find((r) => r.server === 'notes');
    assert.deepEqual([row?.credential, row?.signedIn], ['user-oauth', true], 'Scopes shows the sign-in (kept in SecretStorage)');
    assert.ok(row?.tokenExpires && Date.parse(row.tokenExpires) > Date.now(), 'with its expiry');
    assert.match(row?.heldBy ?? '', /SecretStorage/);
    assert.ok(!JSON.stringify(api.scopes()).match(/eyJ[\w-]+\.eyJ/), 'no token in what the view gets');
  });

  it('calls a 2026-07-28-only server through the gateway, which speaks that era upstream and 2025 to VS Code', async () => {
    const modernEcho = await enabledTool('modern', 'echo');
    const result = await vscode.lm.invokeTool(modernEcho.name, { input: { text: 'across the eras' }, toolInvocationToken: undefined });
    assert.equal(textOf(result), 'across the eras');
    const started = await api.gatewayReady();
    assert.equal(started.servers.find((server) => server.id === 'modern')?.protocolVersion, '2026-07-28', 'the ready line says the era');
    const event = await waitFor('the audit event', () => spoolEvents(api.stateDir).findLast((e) => e.server === 'modern'));
    assert.deepEqual([event.tool, event.status, event.rule], ['echo', 'ok', 'engineers-modern']);
    assert.ok(event.flags.includes('upstream-mcp:2026-07-28'), 'the audit says the call crossed the bridge');
  });

  it("calls a shared-key server through the policy server's relay, with a relay token bound to the gateway's key", async () => {
    const relayedEcho = await enabledTool('relayed', 'echo');
    // The runner's relay refuses anything but key-bound tokens (--relay-requires-dpop): an answer means the gateway proved its key.
    const result = await vscode.lm.invokeTool(relayedEcho.name, { input: { text: 'through the relay' }, toolInvocationToken: undefined });
    assert.equal(textOf(result), 'through the relay');
    const event = await waitFor('the audit event', () => spoolEvents(api.stateDir).findLast((e) => e.server === 'relayed'));
    assert.deepEqual([event.tool, event.status, event.rule], ['echo', 'ok', 'engineers-relayed']);
  });

  it('withdraws a server from VS Code when the developer disables it', async () => {
    await vscode.commands.executeCommand('gatehouse.server.disable', serverNode);
    assert.equal(api.isEnabled(SERVER), false);
    await waitFor('the tools gone from vscode.lm.tools', () =>
      vscode.lm.tools.some((tool) => tool.name === echoTool.name) ? undefined : true,
    );
  });
});
