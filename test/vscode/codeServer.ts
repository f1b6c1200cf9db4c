/**
 * Starting and stopping code-server (installed by codeServerInstall.ts) for the
 * real-VS-Code suite and the demo: loopback only, no auth (the port is the boundary on a
 * one-user machine), its own process group, state in a private scratch folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CodeServerOptions {
  entry: string;
  port: number;
  /** Private folder for code-server's home, config and extensions. */
  scratch: string;
  userData: string;
  workspace: string;
}

export function startCodeServer({ entry, port, scratch, userData, workspace }: CodeServerOptions): ChildProcess {
  writeFileSync(join(scratch, 'config.yaml'), 'auth: none\n');
  const child = spawn(
    process.execPath,
    [
      entry,
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--config',
      join(scratch, 'config.yaml'),
      '--user-data-dir',
      userData,
      '--extensions-dir',
      join(scratch, 'extensions'),
      // 4.117 honours the test `payload` URL parameter as is (4.139 needs `--vscode-option enable-smoke-test-driver`).
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      workspace,
    ],
    {
      detached: true, // its own process group: extension hosts and MCP servers end with it
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        HOME: join(scratch, 'home'),
        XDG_CONFIG_HOME: join(scratch, 'xdg-config'),
        XDG_DATA_HOME: join(scratch, 'xdg-data'),
      },
    },
  );
  child.stdout!.on('data', (chunk: Buffer) => process.stderr.write(`[code-server] ${chunk.toString()}`));
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[code-server] ${chunk.toString()}`));
  return child;
}

export async function waitForHttp(url: string, timeoutMs: number, child: ChildProcess): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not answer ${url} within ${timeoutMs / 1000} s`);
}

/** Ends code-server's whole process group: SIGTERM, then SIGKILL for whatever is left after 3 s. */
export async function endGroup(child: ChildProcess): Promise<void> {
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

/** User settings every Gatehouse code-server needs: workspace trust off (extension MCP servers hang in an untrusted workspace), no welcome page, plus `extra`. */
export function writeUserSettings(userData: string, extra: Record<string, unknown>): void {
  mkdirSync(join(userData, 'User'), { recursive: true });
  writeFileSync(
    join(userData, 'User/settings.json'),
    JSON.stringify({ 'security.workspace.trust.enabled': false, 'workbench.startupEditor': 'none', ...extra }, null, 2),
  );
}
