/**
 * Runs the real-VS-Code suite (test/vscode/suite/) inside code-server's Node extension
 * host, driven by Debian's headless Chromium through playwright-core: the offline stand-in
 * for `@vscode/test-electron`, which downloads VS Code. Takes the screenshots the suite
 * asks for (console line `GATEHOUSE_SCREENSHOT <name>`), checks each (not blank, the
 * expected element on screen) and keeps them in test-output/vscode/. Exit code: the
 * suite's (0 all passed).
 *
 * Facts this relies on: ../shared/VSCODE-TESTING.md (trust off, the smoke-test driver
 * option, the payload URL, the automation callbacks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { stringify } from 'yaml';
import { installCodeServer } from './codeServerInstall';

const REPO = resolve(__dirname, '../..');
const OUTPUT = join(REPO, 'test-output/vscode');
const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium';
const SUITE_TIMEOUT_MS = 10 * 60_000;

/** What each screenshot must show, as a selector in the workbench. */
const EXPECTED: Record<string, { selector: string; text: RegExp }> = {
  // The view's own header is hidden while it is the container's only view; its rows are not.
  sidebar: { selector: '.part.sidebar .monaco-list-row', text: /probe/ },
};

async function main(): Promise<number> {
  const install = installCodeServer();
  mkdirSync(OUTPUT, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-vscode-'));
  const workspace = join(scratch, 'workspace');
  const userData = join(scratch, 'user-data');
  mkdirSync(workspace, { recursive: true });
  mkdirSync(join(userData, 'User'), { recursive: true });
  const gatewayConfig = join(workspace, 'gatehouse-gateway.yaml');
  writeFileSync(gatewayConfig, stringify({
    servers: [{ id: 'probe', title: 'Probe', transport: { type: 'stdio', command: process.execPath, args: [join(REPO, 'dist/fixtures/probe-upstream.mjs')] } }],
  }));
  writeFileSync(join(userData, 'User/settings.json'), JSON.stringify({
    'security.workspace.trust.enabled': false,
    'gatehouse.gatewayConfig': gatewayConfig,
    'workbench.startupEditor': 'none',
  }, null, 2));
  writeFileSync(join(scratch, 'config.yaml'), 'auth: none\n');

  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = startCodeServer(install.entry, port, scratch, userData, workspace);
  let exitCode = 1;
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, server);
    exitCode = await runSuite(port, workspace, scratch);
  } finally {
    await endGroup(server);
    if (!process.env.GATEHOUSE_KEEP_VSCODE_SCRATCH) rmSync(scratch, { recursive: true, force: true });
  }
  return exitCode;
}

function startCodeServer(entry: string, port: number, scratch: string, userData: string, workspace: string): ChildProcess {
  const child = spawn(process.execPath, [entry,
    '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--config', join(scratch, 'config.yaml'),
    '--user-data-dir', userData, '--extensions-dir', join(scratch, 'extensions'),
    // 4.117 honours the test `payload` URL parameter as is (4.139 needs `--vscode-option enable-smoke-test-driver`).
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', workspace], {
    detached: true, // its own process group: extension hosts and MCP servers end with it
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: join(scratch, 'home'), XDG_CONFIG_HOME: join(scratch, 'xdg-config'), XDG_DATA_HOME: join(scratch, 'xdg-data') },
  });
  child.stdout!.on('data', (chunk: Buffer) => process.stderr.write(`[code-server] ${chunk.toString()}`));
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[code-server] ${chunk.toString()}`));
  return child;
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
    let finish: (code: number) => void = () => undefined;
    const finished = new Promise<number>((resolveExit) => { finish = resolveExit; });
    await page.exposeFunction('codeAutomationLog', (_type: string, args: unknown[]) => {
      const line = (Array.isArray(args) ? args : [args]).map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
      process.stdout.write(`${line}\n`);
      const match = /GATEHOUSE_SCREENSHOT (\w+)/.exec(line);
      if (match) shots.push(takeScreenshot(page, match[1]!));
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
    const problems = (await Promise.allSettled(shots)).flatMap((shot) => (shot.status === 'rejected' ? [String(shot.reason)] : []));
    for (const problem of problems) process.stderr.write(`screenshot check failed: ${problem}\n`);
    const missing = Object.keys(EXPECTED).filter((name) => !safeExists(join(OUTPUT, `${name}.png`)));
    for (const name of missing) process.stderr.write(`screenshot ${name} was never taken\n`);
    return code === 0 && problems.length === 0 && missing.length === 0 ? 0 : 1;
  } finally {
    await browser.close();
  }
}

/** Saves the screenshot and checks it: the expected element is on screen and the image is not blank. */
async function takeScreenshot(page: Page, name: string): Promise<void> {
  const expected = EXPECTED[name];
  if (!expected) throw new Error(`no expectation for screenshot "${name}"`);
  await page.locator(expected.selector).filter({ hasText: expected.text }).first().waitFor({ state: 'visible', timeout: 15_000 });
  const path = join(OUTPUT, `${name}.png`);
  const png = await page.screenshot({ path });
  // A blank (single-colour) 1400x900 PNG compresses to a few KB; the workbench is far larger.
  if (png.length < 20_000) throw new Error(`${path} looks blank (${png.length} bytes)`);
  process.stdout.write(`screenshot ${name}: ${path} (${Math.round(png.length / 1024)} KB)\n`);
}

async function waitForHttp(url: string, timeoutMs: number, child: ChildProcess): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not answer ${url} within ${timeoutMs / 1000} s`);
}

/** Ends code-server's whole process group: SIGTERM, then SIGKILL for whatever is left after 3 s. */
async function endGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name);
      return true;
    } catch {
      return false; // the group is gone
    }
  };
  if (!signal('SIGTERM')) return;
  await new Promise((r) => setTimeout(r, 3_000));
  signal('SIGKILL');
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
