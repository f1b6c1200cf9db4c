/**
 * `npm run demo`: the whole managed setup on one machine with embedded defaults.
 * A local OIDC provider (oidc-provider, standing in for the org's IdP) signs in "alice";
 * the policy server starts with examples/org-policy.yaml; a gateway managed by it serves
 * the example servers on 127.0.0.1:7420 with alice's policy. Ctrl-C ends everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { startLocalIdp } from '../test/support/localIdp';

const REPO = resolve(__dirname, '..');
const STATE = join(REPO, '.gatehouse/demo');
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
      } catch { /* not the ready line */ }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  mkdirSync(STATE, { recursive: true, mode: 0o700 });
  const idp = await startLocalIdp();
  const policyServer = await start('policy-server', ['policy-server', '--data-dir', join(STATE, 'policy-server'), '--listen', '127.0.0.1:7410',
    '--oidc-issuer', idp.issuer, '--oidc-audience', idp.audience, '--bootstrap-policy', 'examples/org-policy.yaml']);
  const url = String(policyServer.url);
  writeFileSync(join(STATE, 'pinned-jwks.json'), await (await fetch(`${url}/.well-known/jwks.json`)).text());
  writeFileSync(join(STATE, 'alice.token'), await idp.tokenFor('alice'), { mode: 0o600 });
  const gateway = await start('gateway', ['gateway', '--policy-server', url, '--policy-keys', join(STATE, 'pinned-jwks.json'),
    '--policy-token-file', join(STATE, 'alice.token'), '--listen', '127.0.0.1:7420', '--runtime-dir', join(STATE, 'gateway'), '--state-dir', join(STATE, 'gateway-state'),
    '--launch-secret-file', join(STATE, 'launch-secret'), '--workdir', REPO]);
  process.stdout.write(`\nGatehouse demo is running.
  IdP (local, for the demo):  ${idp.issuer}
  Policy server:              ${url}   (policy: examples/org-policy.yaml, version 1)
  Gateway for alice:          ${JSON.stringify(gateway.servers)}
  Launch secret:              ${join(STATE, 'launch-secret')}

Try:  (cd node_modules/@modelcontextprotocol/inspector-cli/build && node index.js http://127.0.0.1:7420/mcp/everything \\
        --transport http --header "Authorization: Bearer $(cat ${join(STATE, 'launch-secret')})" --method tools/list)
Ctrl-C stops everything.\n`);
  const stop = async () => {
    for (const child of children) child.kill('SIGTERM');
    await idp.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${(error as Error).message}\n`);
  for (const child of children) child.kill('SIGTERM');
  process.exit(1);
});
