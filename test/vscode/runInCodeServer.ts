/**
 * Runs the real-VS-Code suite (test/vscode/suite/) inside code-server's Node extension
 * host, driven by Debian's headless Chromium through playwright-core: the offline stand-in
 * for `@vscode/test-electron`, which downloads VS Code. Around it: a real local IdP
 * (oidc-provider) and the real policy server with a test org policy, so the extension's
 * gateway is managed for the signed-in test user (the token file stands in for VS Code
 * sign-in until issue #4).
 *
 * Before VS Code starts, alice's gateway spool gets a week of older calls (100,000 events)
 * for the Audit view. The suite talks to this runner through console lines: `GATEHOUSE_SCREENSHOT <name>`
 * (screenshot, checked: the expected element visible, not blank; kept in
 * test-output/vscode/) and `GATEHOUSE_CONFIRM <approve|deny>` (wait for the Confirm
 * webview, screenshot it, press that button as a person would). Exit code: the suite's
 * (0 all passed).
 *
 * Facts this relies on: ../shared/VSCODE-TESTING.md (trust off, the smoke-test driver
 * option, the payload URL, the automation callbacks).
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Frame, type Page } from 'playwright-core';
import { installCodeServer } from './codeServerInstall';
import { endGroup, startCodeServer, waitForHttp, writeUserSettings } from './codeServer';
import { startLocalIdp } from '../support/localIdp';
import { removeDir, startPolicyServer, tokenFile } from '../support/policyHarness';
import { seedAuditTrail } from './seedAuditTrail';

const REPO = resolve(__dirname, '../..');
const OUTPUT = join(REPO, 'test-output/vscode');
const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium';
const SUITE_TIMEOUT_MS = 10 * 60_000;

/** What each screenshot must show, as a selector in the workbench. */
const EXPECTED: Record<string, { selector: string; text: RegExp; inWebview?: true }> = {
  // The view's own header is hidden while it is the container's only view; its rows are not.
  sidebar: { selector: '.part.sidebar .monaco-list-row', text: /needs confirmation/ },
  confirm: { selector: 'h1', text: /Run "env" on probe\?/, inWebview: true },
  audit: { selector: '#status', text: /of 100,000 events/, inWebview: true },
  scopes: { selector: 'tr', text: /Probe \(probe\)/, inWebview: true },
  reviews: { selector: '.part.sidebar .monaco-list-row', text: /bob@example\.com: pid on probe/ },
};

const ORG_POLICY = `version: 1
org: vscode-test
admins: [admins]
servers:
  - id: probe
    title: Probe
    transport: { type: stdio, command: ${process.execPath}, args: [${join(REPO, 'dist/fixtures/probe-upstream.mjs')}] }
  - id: vault
    title: Secrets vault
    transport: { type: streamable-http, url: "http://127.0.0.1:9/mcp" }
groups:
  - { id: engineers, match: [{ user: alice }] }
  - { id: admins, match: [{ user: alice }] }
  - { id: leads, match: [{ user: alice }] }
  - { id: requesters, match: [{ user: bob }] }
rules:
  - { id: engineers-probe, effect: allow, principals: [group:engineers], servers: [probe], tools: [echo, weather, pid] }
  - { id: env-needs-confirmation, effect: confirm, principals: [group:engineers], servers: [probe], tools: [env], reason: it reveals the environment }
  - { id: no-crashes, effect: deny, principals: ["*"], servers: [probe], tools: [crash], reason: crashing upstreams is not allowed }
  - { id: pid-reviewed, effect: confirm, principals: [group:requesters], servers: [probe], tools: [pid], reviewers: leads, reason: a lead looks first }
guardrails:
  confirmationTimeoutSeconds: 300
`;

async function main(): Promise<number> {
  const install = installCodeServer();
  mkdirSync(OUTPUT, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-vscode-'));
  const workspace = join(scratch, 'workspace');
  const userData = join(scratch, 'user-data');
  mkdirSync(workspace, { recursive: true });
  const idp = await startLocalIdp();
  const policyServer = await startPolicyServer(idp, { policyYaml: ORG_POLICY });
  const tokenPath = tokenFile(scratch, 'alice', await idp.tokenFor('alice'));
  // Bob's call waits for a lead's review; alice, in VS Code, is that lead.
  const bobToken = await idp.tokenFor('bob');
  const queued = await fetch(`${policyServer.url}/v1/reviews`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${bobToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ server: 'probe', method: 'tools/call', tool: 'pid', arguments: { why: 'debugging a hang' } }),
  });
  if (queued.status !== 201) throw new Error(`could not queue bob's review: HTTP ${queued.status} ${await queued.text()}`);
  const review = ((await queued.json()) as { review: { id: string } }).review;
  // A week of older calls in alice's gateway spool (where VS Code keeps the extension's global storage), for the Audit view.
  const seeding = performance.now();
  await seedAuditTrail(join(userData, 'User', 'globalStorage', 'gatehouse.gatehouse', 'state', 'audit'), 100_000, 'alice');
  process.stdout.write(`audit: seeded 100,000 events in ${Math.round(performance.now() - seeding)} ms\n`);
  writeUserSettings(userData, {
    'gatehouse.policyServer.url': policyServer.url,
    'gatehouse.policyServer.keysFile': policyServer.keysPath,
    'gatehouse.policyServer.tokenFile': tokenPath,
  });

  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = startCodeServer({ entry: install.entry, port, scratch, userData, workspace });
  let exitCode = 1;
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, server);
    exitCode = await runSuite(port, workspace, scratch);
    // The suite approved bob's review from the sidebar: the policy server must say so.
    const decided = await (await fetch(`${policyServer.url}/v1/reviews/${review.id}`, { headers: { Authorization: `Bearer ${bobToken}` } })).json() as { review?: { state: string; reviewer?: { sub: string } } };
    if (decided.review?.state !== 'approved' || decided.review.reviewer?.sub !== 'alice') {
      process.stderr.write(`bob's review was not approved by alice from VS Code: ${JSON.stringify(decided)}\n`);
      exitCode = 1;
    } else {
      process.stdout.write('review: approved by alice from the Pending reviews view\n');
    }
  } finally {
    await endGroup(server);
    await policyServer.stop();
    await idp.stop();
    removeDir(policyServer.dir);
    if (!process.env.GATEHOUSE_KEEP_VSCODE_SCRATCH) rmSync(scratch, { recursive: true, force: true });
  }
  return exitCode;
}

async function runSuite(port: number, workspace: string, scratch: string): Promise<number> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    env: { HOME: join(scratch, 'home'), XDG_CONFIG_HOME: join(scratch, 'xdg-config') },
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const shots: Array<Promise<void>> = [];
    const metrics: Record<string, number> = {};
    let finish: (code: number) => void = () => undefined;
    const finished = new Promise<number>((resolveExit) => { finish = resolveExit; });
    await page.exposeFunction('codeAutomationLog', (_type: string, args: unknown[]) => {
      const line = (Array.isArray(args) ? args : [args]).map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
      process.stdout.write(`${line}\n`);
      const match = /GATEHOUSE_SCREENSHOT (\w+)/.exec(line);
      if (match) shots.push(takeScreenshot(page, match[1]!));
      const metric = /GATEHOUSE_METRIC (\w+) ([0-9.]+)/.exec(line);
      if (metric) metrics[metric[1]!] = Number(metric[2]);
      const confirm = /GATEHOUSE_CONFIRM (approve|deny)/.exec(line);
      if (confirm) shots.push(answerConfirm(page, confirm[1] as 'approve' | 'deny'));
    });
    await page.exposeFunction('codeAutomationExit', (code: number) => finish(code));
    const remote = (path: string) => `vscode-remote://127.0.0.1:${port}${path}`;
    const payload = JSON.stringify([['extensionDevelopmentPath', remote(REPO)], ['extensionTestsPath', remote(join(REPO, 'dist/vscode-test/suite.js'))]]);
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`);
    const timeout = new Promise<number>((resolveTimeout) => setTimeout(() => {
      process.stderr.write(`the suite did not finish within ${SUITE_TIMEOUT_MS / 1000} s\n`);
      resolveTimeout(1);
    }, SUITE_TIMEOUT_MS).unref());
    const code = await Promise.race([finished, timeout]);
    // Measurements the suite made inside VS Code, for `npm run bench -- extension`.
    writeFileSync(join(OUTPUT, 'metrics.json'), JSON.stringify(metrics, null, 2));
    const problems = (await Promise.allSettled(shots)).flatMap((shot) => (shot.status === 'rejected' ? [String(shot.reason)] : []));
    for (const problem of problems) process.stderr.write(`screenshot check failed: ${problem}\n`);
    const missing = Object.keys(EXPECTED).filter((name) => !safeExists(join(OUTPUT, `${name}.png`)));
    for (const name of missing) process.stderr.write(`screenshot ${name} was never taken\n`);
    return code === 0 && problems.length === 0 && missing.length === 0 ? 0 : 1;
  } finally {
    await browser.close();
  }
}

/** The frame of the Confirm webview once its question is shown (webviews are nested iframes). */
async function confirmFrame(page: Page): Promise<Frame> {
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    for (const frame of page.frames()) {
      if (await frame.locator('#approve:not([disabled])').count().catch(() => 0) && await frame.locator('#actions:not([hidden])').count().catch(() => 0)) return frame;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the Confirm webview did not show a call within 30 s');
}

/** The webview frame showing `selector` with `text` (each webview is its own nested iframe). */
async function webviewFrame(page: Page, selector: string, text: RegExp): Promise<Frame> {
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    for (const frame of page.frames()) {
      if (await frame.locator(selector).filter({ hasText: text }).count().catch(() => 0)) return frame;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no webview showed ${selector} with ${text} within 30 s`);
}

/** Waits for the Confirm prompt, screenshots the first one, and presses the button a person would. */
async function answerConfirm(page: Page, decision: 'approve' | 'deny'): Promise<void> {
  const frame = await confirmFrame(page);
  if (!safeExists(join(OUTPUT, 'confirm.png'))) await takeScreenshot(page, 'confirm', frame);
  // Deny by keyboard (it has the focus), Approve by mouse: both ways a person answers.
  if (decision === 'deny') await frame.locator('#deny').press('Enter');
  else await frame.locator('#approve').click();
  process.stdout.write(`confirm: pressed ${decision}\n`);
}

/** Saves the screenshot and checks it: the expected element is on screen and the image is not blank. */
async function takeScreenshot(page: Page, name: string, frame?: Frame): Promise<void> {
  const expected = EXPECTED[name];
  if (!expected) throw new Error(`no expectation for screenshot "${name}"`);
  const scope = expected.inWebview ? (frame ?? await webviewFrame(page, expected.selector, expected.text)) : page;
  await scope.locator(expected.selector).filter({ hasText: expected.text }).first().waitFor({ state: 'visible', timeout: 15_000 });
  const path = join(OUTPUT, `${name}.png`);
  const png = await page.screenshot({ path });
  // A blank (single-colour) 1400x900 PNG compresses to a few KB; the workbench is far larger.
  if (png.length < 20_000) throw new Error(`${path} looks blank (${png.length} bytes)`);
  process.stdout.write(`screenshot ${name}: ${path} (${Math.round(png.length / 1024)} KB)\n`);
}

function safeExists(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

main().then((code) => process.exit(code), (error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
