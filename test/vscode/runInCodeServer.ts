/**
 * Runs the real-VS-Code suite (test/vscode/suite/) inside code-server's Node extension
 * host, driven by Debian's headless Chromium through playwright-core: the offline stand-in
 * for `@vscode/test-electron` (test/vscode/runInElectron.ts), which downloads VS Code.
 * Around it: suiteEnvironment.ts (IdP, policy server, seeded audit, settings); the
 * person at the keyboard: workbenchDriver.ts. Exit code: the suite's (0 all passed), and
 * 1 when a screenshot check failed or the policy server did not see the review approved.
 *
 * Facts this relies on: ../shared/VSCODE-TESTING.md (trust off, the smoke-test driver
 * option, the payload URL, the automation callbacks).
 */
import { join, resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { installCodeServer } from './codeServerInstall';
import { endGroup, startCodeServer, waitForHttp } from './codeServer';
import { prepareSuiteEnvironment } from './suiteEnvironment';
import { WorkbenchDriver } from './workbenchDriver';

const REPO = resolve(__dirname, '../..');
const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium';
const SUITE_TIMEOUT_MS = 10 * 60_000;

async function main(): Promise<number> {
  const install = installCodeServer();
  const env = await prepareSuiteEnvironment();
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = startCodeServer({ entry: install.entry, port, scratch: env.scratch, userData: env.userData, workspace: env.workspace });
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, server);
    const code = await runSuite(port, env.workspace, env.scratch, env.idpIssuer);
    return (await env.reviewApproved()) ? code : 1;
  } finally {
    await endGroup(server);
    await env.dispose();
  }
}

async function runSuite(port: number, workspace: string, scratch: string, idpIssuer: string): Promise<number> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    env: { HOME: join(scratch, 'home'), XDG_CONFIG_HOME: join(scratch, 'xdg-config') },
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const driver = new WorkbenchDriver(page);
    let finish: (code: number) => void = () => undefined;
    const finished = new Promise<number>((resolveExit) => {
      finish = resolveExit;
    });
    // code-server's smoke-test hooks: the extension host's console and its exit code reach these.
    await page.exposeFunction('codeAutomationLog', (_type: string, args: unknown[]) => {
      driver.consoleLine((Array.isArray(args) ? args : [args]).map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    });
    await page.exposeFunction('codeAutomationExit', (code: number) => finish(code));
    await trustLinkTarget(page, port, idpIssuer);
    const remote = (path: string) => `vscode-remote://127.0.0.1:${port}${path}`;
    const payload = JSON.stringify([
      ['extensionDevelopmentPath', remote(REPO)],
      ['extensionTestsPath', remote(join(REPO, 'dist/vscode-test/suite.js'))],
    ]);
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`);
    const timeout = new Promise<number>((resolveTimeout) =>
      setTimeout(() => {
        process.stderr.write(`the suite did not finish within ${SUITE_TIMEOUT_MS / 1000} s\n`);
        resolveTimeout(1);
      }, SUITE_TIMEOUT_MS).unref(),
    );
    const code = await Promise.race([finished, timeout]);
    return (await driver.finish()) && code === 0 ? 0 : 1;
  } finally {
    await browser.close();
  }
}

/**
 * The workbench asks before an extension opens a website, and in test mode it refuses to
 * ask (the sign-in would fail). A person would answer "Open" once and VS Code would remember
 * the IdP as a trusted domain; this records that same answer where the browser workbench
 * keeps it (its application storage in IndexedDB) before the workbench loads.
 */
async function trustLinkTarget(page: Page, port: number, origin: string): Promise<void> {
  await page.goto(`http://127.0.0.1:${port}/healthz`);
  await page.evaluate(async (trusted) => {
    await new Promise<void>((resolve, reject) => {
      const open = indexedDB.open('vscode-web-state-db-global');
      open.onupgradeneeded = () => open.result.createObjectStore('ItemTable');
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const transaction = open.result.transaction('ItemTable', 'readwrite');
        transaction.objectStore('ItemTable').put(JSON.stringify([trusted]), 'http.linkProtectionTrustedDomains');
        transaction.oncomplete = () => {
          open.result.close();
          resolve();
        };
        transaction.onerror = () => reject(transaction.error);
      };
    });
  }, origin);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
