/**
 * The client the official conformance suite drives for `client --suite auth`
 * (test/conformance/authSuite.test.ts): the real gateway, started unmanaged with one
 * `user-oauth` server at the scenario's URL and `--test-headless-oauth` (the suite's
 * authorization server redirects without a login page), and a real SDK client that
 * initialises through the gateway, lists tools and calls the first one. Every OAuth step
 * the suite checks is the gateway's: discovery, registration, PKCE, token, step-up.
 *
 * Inputs as the suite gives them: the server URL as the last argument, the scenario in
 * MCP_CONFORMANCE_SCENARIO, pre-registered client credentials in MCP_CONFORMANCE_CONTEXT.
 * The client secret goes to the gateway in a 0600 file, as an operator would give it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { discoverOAuthProtectedResourceMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { startGateway, type RunningGateway } from '../support/gatewayHarness';
import { describeError } from '../../common/log/logger';

/** The client ID metadata document URL the suite's CIMD scenario expects a client to present. */
const CONFORMANCE_CLIENT_METADATA_URL = 'https://conformance-test.local/client-metadata.json';

async function main(): Promise<number> {
  const serverUrl = process.argv.at(-1);
  if (!serverUrl?.startsWith('http')) throw new Error('usage: oauthConformanceClient <server-url>');
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as {
    client_id?: string;
    client_secret?: string;
    idp_issuer?: string;
    idp_client_id?: string;
    idp_id_token?: string;
  };
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-oauth-conformance-'));
  const privateFile = (name: string, value: string) => {
    writeFileSync(join(dir, name), value, { mode: 0o600 });
    return join(dir, name);
  };
  // Enterprise-managed authorization: the person's ID token from the suite's IdP, as their org sign-in would give it.
  // The admin pins the server's authorization server, read here from its metadata as they would.
  const credential: Record<string, unknown> =
    context.idp_id_token && context.idp_issuer && context.idp_client_id
      ? {
          mode: 'enterprise-managed',
          authorizationServer: (await discoverOAuthProtectedResourceMetadata(serverUrl)).authorization_servers?.[0],
          idp: { issuer: context.idp_issuer, clientId: context.idp_client_id, idTokenFile: privateFile('id-token', context.idp_id_token) },
        }
      : { mode: 'user-oauth', clientMetadataUrl: CONFORMANCE_CLIENT_METADATA_URL };
  if (context.client_id) {
    credential.clientId = context.client_id;
    if (context.client_secret) credential.clientSecretFile = privateFile('client-secret', context.client_secret);
  }
  let gateway: RunningGateway | undefined;
  try {
    gateway = await startGateway([{ id: 'conformance', transport: { type: 'streamable-http', url: serverUrl }, credential }], {
      dir,
      extraArgs: ['--test-headless-oauth'],
    });
    const client = await gateway.connect('conformance');
    const { tools } = await client.listTools();
    const first = tools[0];
    if (first) await client.callTool({ name: first.name, arguments: {} });
    await client.close();
    return 0;
  } catch (error) {
    process.stderr.write(`${describeError(error)}\n${gateway?.stderr() ?? ''}`);
    return 1;
  } finally {
    await gateway?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${describeError(error)}\n`);
    process.exit(1);
  },
);
