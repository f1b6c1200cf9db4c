/**
 * The newcomer's walkthrough of `npm run demo`, driven as a person would drive it: the
 * real demo command (local IdP, policy server with examples/org-policy.yaml, code-server
 * with the extension pointed at them), then headless Chromium through playwright-core
 * clicking in VS Code's own UI: open the Gatehouse sidebar, Sign In (VS Code asks to open
 * the IdP's page; at the IdP, type alice), enable "memory" with its row's
 * icon, see its tools appear badged as the example policy says (read_graph read-only,
 * delete_entities destructive), "Call Tool…" on delete_entities, type the arguments, accept
 * VS Code's own prompt, approve in the Gatehouse Confirm webview, see the result, open
 * Audit from the server's row and find the call there, approved by alice; last, the
 * notification centre holds no "Activating extension ... failed" (a built-in that cannot
 * load). Screenshots of each step go to test-output/demo/. Exit code 0 when every step was seen.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium, type Page } from 'playwright-core';
import { loginAtIdp, webviewFrame } from './workbenchDriver';

const REPO = resolve(__dirname, '../..');
const OUTPUT = join(REPO, 'test-output/demo');
const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium';

async function main(): Promise<number> {
  mkdirSync(OUTPUT, { recursive: true });
  const state = mkdtempSync(join(tmpdir(), 'gatehouse-demo-'));
  const demo = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/demo.ts')], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GATEHOUSE_DEMO_DIR: state },
  });
  demo.stderr!.on('data', () => undefined); // the demo's own logs; its stdout says where to go
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error('the demo printed no URL within 5 minutes')), 5 * 60_000);
    createInterface({ input: demo.stdout! }).on('line', (line) => {
      process.stdout.write(`[demo] ${line}\n`);
      const match = /^\s+(http:\/\/127\.0\.0\.1:7430\/\?\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]!);
      }
    });
    demo.once('exit', (code) => reject(new Error(`the demo exited with ${code}`)));
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await walkthrough(page, url);
    return 0;
  } finally {
    await browser.close();
    const exited = new Promise((r) => demo.once('exit', r));
    demo.kill('SIGINT'); // the demo ends code-server, the policy server and the IdP
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    rmSync(state, { recursive: true, force: true });
  }
}

async function walkthrough(page: Page, url: string): Promise<void> {
  const step = async (name: string, what: () => Promise<void>) => {
    try {
      await what();
    } catch (error) {
      await page.screenshot({ path: join(OUTPUT, `${name}-failed.png`) }).catch(() => undefined);
      throw error;
    }
    await page.screenshot({ path: join(OUTPUT, `${name}.png`) });
    process.stdout.write(`step ${name}: done\n`);
  };
  const sidebarRow = (text: string) => page.locator('.part.sidebar .monaco-list-row', { hasText: text }).first();

  await page.goto(url);
  await step('0-signed-out', async () => {
    await page.locator('.activitybar [aria-label*="Gatehouse"]').first().click({ timeout: 60_000 });
    await page.locator('.part.sidebar').getByRole('button', { name: 'Sign In' }).waitFor({ timeout: 60_000 });
  });
  await step('0-signed-in', async () => {
    const tab = page.context().waitForEvent('page', { timeout: 30_000 });
    await page.locator('.part.sidebar').getByRole('button', { name: 'Sign In' }).click();
    // VS Code asks before it opens a website; the person says Open.
    await page.getByRole('button', { name: 'Open', exact: true }).click({ timeout: 30_000 });
    await loginAtIdp(await tab, 'alice');
  });
  await step('1-sidebar', async () => {
    await sidebarRow('Memory (knowledge graph)').waitFor({ timeout: 60_000 });
    await sidebarRow('Everything').waitFor();
  });
  await step('2-enabled', async () => {
    const memory = sidebarRow('Memory (knowledge graph)');
    await memory.hover();
    await memory.locator('[aria-label="Enable Server"]').click();
    await sidebarRow('delete_entities').waitFor({ timeout: 60_000 }); // VS Code started it and listed its tools
    // The server is not trusted, so only the policy's per-tool risk can make a tool read-only.
    const badges = async (tool: string) => (await sidebarRow(tool).locator('.label-description').textContent()) ?? '';
    const readGraph = await badges('read_graph');
    assert.match(readGraph, /read-only/, `read_graph is badged "${readGraph}"`);
    assert.doesNotMatch(readGraph, /destructive/, `read_graph is badged "${readGraph}"`);
    const deleteEntities = await badges('delete_entities');
    assert.match(deleteEntities, /destructive/, `delete_entities is badged "${deleteEntities}"`);
  });
  await step('3-confirm', async () => {
    const tool = sidebarRow('delete_entities');
    await tool.hover();
    await tool.locator('[aria-label="Call Tool…"]').click();
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill('{"entityNames": ["walkthrough"]}');
    await input.press('Enter');
    // VS Code asks first for a tool its annotations call destructive; then Gatehouse's policy asks.
    await page.getByRole('button', { name: 'Yes' }).first().click({ timeout: 30_000 });
    await webviewFrame(page, '#approve');
  });
  await step('4-result', async () => {
    const confirm = await webviewFrame(page, '#approve');
    await confirm.locator('#approve').click();
    await page.locator('.tabs-container .tab', { hasText: 'success' }).first().waitFor({ timeout: 30_000 });
  });
  await step('5-audit', async () => {
    const memory = sidebarRow('Memory (knowledge graph)');
    await memory.hover();
    await memory.locator('[aria-label="Show Audit"]').click();
    const audit = await webviewFrame(page, '#rows .row');
    await audit
      .locator('#rows .row', { hasText: 'delete_entities' })
      .filter({ hasText: 'confirm-approved' })
      .filter({ hasText: 'alice' })
      .first()
      .waitFor();
  });
  await step('6-notifications', async () => {
    // The centre keeps every notification of the session, also toasts that have hidden themselves.
    await page.locator('.part.sidebar .composite.title').click(); // keys go to the workbench, not the Audit webview
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.fill('>Notifications: Show Notifications');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Show Notifications' }).first().waitFor();
    await input.press('Enter');
    const centre = page.locator('.notifications-center.visible');
    await centre.waitFor({ timeout: 15_000 });
    const messages = await centre.locator('.notification-list-item-message').allTextContents();
    const failed = messages.filter((message) => /Activating extension/.test(message));
    assert.deepEqual(failed, [], `VS Code reports extensions that failed to activate: ${failed.join(' | ')}`);
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo walkthrough failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
