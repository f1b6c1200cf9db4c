/**
 * `npm run demo`: the whole managed setup on one machine with embedded defaults.
 * A local OIDC provider (oidc-provider, standing in for the org's IdP) signs in "alice";
 * the policy server starts with examples/org-policy.yaml (its relative commands made
 * absolute); then VS Code in the browser (code-server on 127.0.0.1:7430, installed once
 * into .cache/) with the Gatehouse extension loaded and pointed at that policy server,
 * so its own gateway runs for alice. Prints the URL to open. With `--no-vscode`, a
 * headless gateway on 127.0.0.1:7420 instead. With `--servers-only`, only the IdP and the
 * policy server, plus the user settings of a desktop Extension Development Host
 * (.gatehouse/demo/dev-host, the user data dir .vscode/launch.json gives it: the settings
 * are machine-scoped, so a workspace cannot set them). Ctrl-C ends everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { RESOURCE_SCOPE, startLocalIdp, VSCODE_CLIENT_ID, type LocalIdp } from '../test/support/localIdp';
import { installCodeServer } from '../test/vscode/codeServerInstall';
import { endGroup, startCodeServer, waitForHttp, writeUserSettings } from '../test/vscode/codeServer';
import { describeError } from '../common/log/logger';

const REPO = resolve(__dirname, '..');
// GATEHOUSE_DEMO_DIR: a fresh folder for a scripted walkthrough (test/vscode/demoWalkthrough.ts).
const STATE = process.env.GATEHOUSE_DEMO_DIR ?? join(REPO, '.gatehouse/demo');
const children: ChildProcess[] = [];

function start(name: string, args: string[]): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [join(REPO, 'dist/gatehouse.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO });
  children.push(child);
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[${name}] ${chunk}`));
  return new Promise((resolveReady, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.event === 'ready') resolveReady(parsed);
      } catch {
        /* not the ready line */
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  mkdirSync(STATE, { recursive: true, mode: 0o700 });
  const serversOnly = process.argv.includes('--servers-only');
  const withVsCode = !serversOnly && !process.argv.includes('--no-vscode');
  // In VS Code the IdP is on 127.0.0.2: code-server turns links to 127.0.0.1 into its port proxy, which drops their path.
  const idp = await startLocalIdp(withVsCode ? { host: '127.0.0.2' } : {});
  // The example's commands are relative to the repository; the extension's gateway runs elsewhere.
  const policyFile = join(STATE, 'org-policy.yaml');
  writeFileSync(
    policyFile,
    readFileSync(join(REPO, 'examples/org-policy.yaml'), 'utf8')
      .replaceAll('command: node_modules/.bin/', `command: ${REPO}/node_modules/.bin/`)
      .replace('args: [examples]', `args: [${REPO}/examples]`),
  );
  const policyServer = await start('policy-server', [
    'policy-server',
    '--data-dir',
    join(STATE, 'policy-server'),
    '--listen',
    '127.0.0.1:7410',
    '--oidc-issuer',
    idp.issuer,
    '--oidc-audience',
    idp.audience,
    '--bootstrap-policy',
    policyFile,
  ]);
  const url = String(policyServer.url);
  writeFileSync(join(STATE, 'pinned-jwks.json'), await (await fetch(`${url}/.well-known/jwks.json`)).text());
  writeFileSync(join(STATE, 'alice.token'), await idp.tokenFor('alice'), { mode: 0o600 });
  // One stop, however many signals arrive (a task's terminal may send SIGHUP, then SIGTERM).
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const child of children) await endGroupOrKill(child);
      await idp.stop().catch(() => undefined);
      process.exit(0);
    })());
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  // A VS Code task's terminal closing (F5's postDebugTask) hangs up on it.
  process.on('SIGHUP', () => void stop());
  if (serversOnly) return writeDevHostSettings(idp, url);
  if (withVsCode) return startVsCode(idp, url);
  const gateway = await start('gateway', [
    'gateway',
    '--policy-server',
    url,
    '--policy-keys',
    join(STATE, 'pinned-jwks.json'),
    '--policy-token-file',
    join(STATE, 'alice.token'),
    '--listen',
    '127.0.0.1:7420',
    '--runtime-dir',
    join(STATE, 'gateway'),
    '--state-dir',
    join(STATE, 'gateway-state'),
    '--launch-secret-file',
    join(STATE, 'launch-secret'),
    '--workdir',
    REPO,
  ]);
  process.stdout.write(`\nGatehouse demo is running.
  IdP (local, for the demo):  ${idp.issuer}
  Policy server:              ${url}   (policy: examples/org-policy.yaml, version 1)
  Gateway for alice:          ${JSON.stringify(gateway.servers)}
  Launch secret:              ${join(STATE, 'launch-secret')}

Try:  (cd node_modules/@modelcontextprotocol/inspector-cli/build && node index.js http://127.0.0.1:7420/mcp/everything \\
        --transport http --header "Authorization: Bearer $(cat ${join(STATE, 'launch-secret')})" --method tools/list)
Ctrl-C stops everything.\n`);
}

/** F5 in VS Code (.vscode/launch.json): the Extension Development Host signs in at this IdP and uses this policy server. */
function writeDevHostSettings(idp: LocalIdp, policyServerUrl: string): void {
  const userData = join(STATE, 'dev-host');
  writeUserSettings(userData, managedSettings(idp, policyServerUrl));
  // .vscode/tasks.json waits for this line before it starts the Extension Development Host.
  process.stdout.write(`\nGatehouse demo servers are running.
  IdP (local, for the demo):  ${idp.issuer}   (sign in as alice: engineers group)
  Policy server:              ${policyServerUrl}   (policy: examples/org-policy.yaml, version 1)
  Dev host user settings:     ${join(userData, 'User/settings.json')}
Ctrl-C stops everything.\n`);
}

/** The extension's settings for a managed gateway: this policy server, signed in with the (local) org IdP. */
function managedSettings(idp: LocalIdp, policyServerUrl: string): Record<string, unknown> {
  return {
    'gatehouse.policyServer.url': policyServerUrl,
    'gatehouse.policyServer.keysFile': join(STATE, 'pinned-jwks.json'),
    'gatehouse.signIn.provider': 'oidc',
    'gatehouse.signIn.oidc.issuer': idp.issuer,
    'gatehouse.signIn.oidc.clientId': VSCODE_CLIENT_ID,
    'gatehouse.signIn.oidc.resource': idp.audience,
    'gatehouse.signIn.scopes': ['email', 'profile', 'offline_access', RESOURCE_SCOPE],
  };
}

/** VS Code in the browser with the extension loaded (as a development extension) and signed in as alice. */
async function startVsCode(idp: LocalIdp, policyServerUrl: string): Promise<void> {
  let install;
  try {
    install = installCodeServer((line) => process.stderr.write(`[code-server install] ${line}\n`));
  } catch (error) {
    throw new Error(
      `${describeError(error)}\ncode-server could not be installed (it needs g++, make, python3, ripgrep and libkrb5-dev); run "npm run demo -- --no-vscode" for the headless gateway.`,
      { cause: error },
    );
  }
  const scratch = join(STATE, 'vscode');
  const userData = join(scratch, 'user-data');
  const workspace = join(scratch, 'workspace');
  mkdirSync(workspace, { recursive: true });
  // The developer signs in from VS Code with the (local) org IdP: no token file.
  writeUserSettings(userData, managedSettings(idp, policyServerUrl));
  const port = 7430;
  const server = startCodeServer({ entry: install.entry, port, scratch, userData, workspace });
  children.push(server);
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, server);
  const payload = JSON.stringify([['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${REPO}`]]);
  process.stdout.write(`\nGatehouse demo is running.
  IdP (local, for the demo):  ${idp.issuer}   (sign in as alice: engineers group)
  Policy server:              ${policyServerUrl}   (policy: examples/org-policy.yaml, version 1)

Open VS Code in your browser:
  http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}

Then, in the Gatehouse sidebar (the shield in the activity bar):
  0. Sign In: VS Code opens the IdP's page in a new tab (say Open); type alice, Sign in.
  1. Enable "memory" (the play icon on its row): VS Code starts it and its tools appear.
  2. On a tool, "Call Tool…" (the run icon) asks for arguments as JSON and runs it through
     VS Code's MCP client and the gateway (Chat works too where a model is available).
  3. Call delete_entities with {"entityNames": ["x"]}: a Gatehouse prompt asks you to confirm.
  4. The checklist icon opens Audit (your calls, live; filter, export); the key icon, Scopes.
The gateway's log is in Output > Gatehouse.
Ctrl-C stops everything.\n`);
}

async function endGroupOrKill(child: ChildProcess): Promise<void> {
  if (child.spawnargs.some((arg) => arg.endsWith('entry.js'))) await endGroup(child);
  else child.kill('SIGTERM');
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${describeError(error)}\n`);
  for (const child of children) child.kill('SIGTERM');
  process.exit(1);
});
