/**
 * The same real-VS-Code suite in desktop VS Code, for machines that can download it: VS
 * Code comes from `@vscode/test-electron` (cached in .cache/vscode-test/electron) and is
 * launched through playwright-core's Electron driver, so the same WorkbenchDriver that
 * answers the Confirm webview and takes the screenshots in code-server does it here. The
 * suite's output reaches this process on VS Code's stdout. Linux needs a display (run it
 * under `xvfb-run` from Debian's xvfb when there is none).
 *
 * Not run by `.ci/run`: these machines cannot download VS Code, so this runner has not been
 * run here; `npm run test:vscode` (code-server) is the one CI runs.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { downloadAndUnzipVSCode } from '@vscode/test-electron';
import { _electron } from 'playwright-core';
import { prepareSuiteEnvironment } from './suiteEnvironment';
import { WorkbenchDriver } from './workbenchDriver';

const REPO = resolve(__dirname, '../..');
const SUITE_TIMEOUT_MS = 10 * 60_000;

async function main(): Promise<number> {
  const cachePath = join(REPO, '.cache/vscode-test/electron');
  mkdirSync(cachePath, { recursive: true });
  const executablePath = await downloadAndUnzipVSCode({ version: process.env.GATEHOUSE_VSCODE_VERSION ?? 'stable', cachePath });
  const env = await prepareSuiteEnvironment();
  try {
    const app = await _electron.launch({
      executablePath,
      args: [
        env.workspace,
        `--user-data-dir=${env.userData}`,
        `--extensions-dir=${join(env.scratch, 'extensions')}`,
        `--extensionDevelopmentPath=${REPO}`,
        `--extensionTestsPath=${join(REPO, 'dist/vscode-test/suite.js')}`,
        '--disable-workspace-trust',
        '--skip-welcome',
        '--skip-release-notes',
        '--disable-updates',
        '--disable-telemetry',
      ],
      env: { ...process.env, HOME: join(env.scratch, 'home') } as Record<string, string>,
    });
    const page = await app.firstWindow();
    await page.setViewportSize({ width: 1400, height: 900 }).catch(() => undefined);
    const driver = new WorkbenchDriver(page);
    const child = app.process();
    createInterface({ input: child.stdout! }).on('line', (line) => driver.consoleLine(line));
    const exited = new Promise<number>((resolveExit) => child.once('exit', (code) => resolveExit(code ?? 1)));
    const timeout = new Promise<number>((resolveTimeout) =>
      setTimeout(() => {
        process.stderr.write(`the suite did not finish within ${SUITE_TIMEOUT_MS / 1000} s\n`);
        child.kill('SIGTERM');
        resolveTimeout(1);
      }, SUITE_TIMEOUT_MS).unref(),
    );
    const code = await Promise.race([exited, timeout]);
    const shotsOk = await driver.finish();
    return code === 0 && shotsOk && (await env.reviewApproved()) ? 0 : 1;
  } finally {
    await env.dispose();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
