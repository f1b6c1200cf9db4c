/**
 * The newest `@modelcontextprotocol/conformance authorization` suite against the policy
 * server's MCP authorization server (`/oauth`): its metadata, and the authorization code
 * grant with PKCE and a resource indicator for a relay server. The suite prints an
 * authorization URL for a person to open; here the local IdP browser (idpBrowser.ts)
 * opens it and signs alice in at the local IdP (oidc-provider), which lands on the
 * suite's own callback listener. The client is registered dynamically beforehand, as the
 * suite expects a pre-registered one.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFORMANCE, NODE } from '../support/gatewayHarness';
import { signInInBrowser } from '../support/idpBrowser';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { removeDir, startPolicyServer, type RunningPolicyServer } from '../support/policyHarness';

const SIGN_IN_CLIENT = { clientId: 'gatehouse-policy-server', clientSecret: `idp-secret-${'7'.repeat(24)}` };

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('MCP conformance authorization-server suite against the policy server', function () {
  this.timeout(180_000);
  let idp: LocalIdp;
  let server: RunningPolicyServer;

  before(async () => {
    idp = await startLocalIdp({ signInClient: SIGN_IN_CLIENT });
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-as-conformance-'));
    const secretFile = join(dir, 'sign-in-client-secret');
    writeFileSync(secretFile, SIGN_IN_CLIENT.clientSecret, { mode: 0o600 });
    server = await startPolicyServer(idp, {
      dataDir: dir,
      extraArgs: ['--sign-in-client-id', SIGN_IN_CLIENT.clientId, '--sign-in-client-secret-file', secretFile],
    });
  });

  after(async () => {
    await server?.stop();
    await idp?.stop();
    if (server) removeDir(server.dir);
  });

  it('passes the metadata and authorization code grant scenarios', async () => {
    const issuer = `${server.url}/oauth`;
    const port = await freePort();
    const registration = await fetch(`${issuer}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        redirect_uris: [`http://127.0.0.1:${port}/callback`],
        token_endpoint_auth_method: 'none',
        client_name: 'conformance',
      }),
    });
    assert.equal(registration.status, 201, await registration.clone().text());
    const { client_id: clientId } = (await registration.json()) as { client_id: string };

    const args = [
      CONFORMANCE.newest,
      'authorization',
      '--verbose',
      '--url',
      issuer,
      '--client-id',
      clientId,
      '--resource',
      `${server.url}/relay/vault/mcp`,
      '--port',
      String(port),
    ];
    const child = spawn(NODE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let signIn: Promise<unknown> | undefined;
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString();
      // The suite asks a person to open this URL; the test's browser does, once the suite's callback listener is up.
      const url = /^(http:\/\/\S+\/oauth\/auth\?\S+)$/m.exec(output)?.[1];
      if (url && !signIn && output.includes('Callback server started'))
        signIn = signInInBrowser(new URL(url), 'alice').catch((error: unknown) => error);
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const code = await exited;
    const signedIn = await signIn;
    assert.ok(!(signedIn instanceof Error), `the browser sign-in failed: ${String(signedIn)}`);
    const total = /Total: (\d+) passed, (\d+) failed/.exec(output);
    console.log(`      conformance authorization-server suite (policy server /oauth): ${total?.[0] ?? 'no Total line'}`);
    assert.ok(total, `no Total line:\n${output.slice(-4000)}`);
    assert.equal(Number(total[2]), 0, `${output.slice(-3000)}\n${server.stderr().slice(-3000)}`);
    assert.ok(Number(total[1]) >= 2, output.slice(-4000));
    assert.equal(code, 0, output.slice(-4000));
  });
});
