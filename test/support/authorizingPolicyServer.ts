/**
 * The setup the MCP authorization server suites share: the local IdP as the org's SSO (with
 * the policy server's sign-in client there), a shared-key upstream, and the real policy
 * server with `--sign-in-client-id` (its `/oauth` on) relaying one server, `vault`, to the
 * `engineers` group (alice and dave; bob is a contractor). Also what tests send the relay
 * directly: an initialize request and the headers of an MCP POST.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTHORIZATION_KEY_FILE } from '../../policy-server/authorization/authorizationKeys';
import { startKeyedUpstream, type KeyedUpstream } from './keyedUpstream';
import { startLocalIdp, type LocalIdp, type LocalIdpOptions } from './localIdp';
import { removeDir, secretStoreWith, startPolicyServer, type RunningPolicyServer } from './policyHarness';

/** The policy server's own client at the local IdP (for its sign-in step). */
export const SIGN_IN_CLIENT = { clientId: 'gatehouse-policy-server', clientSecret: `idp-secret-${'9'.repeat(24)}` };

/** One shared-key server, `vault` (its `echo` tool), for the `engineers` group. */
export const VAULT_POLICY = (upstreamUrl: string) => `version: 1
org: test
admins: [admins]
servers:
  - id: vault
    title: Vault API
    transport: { type: streamable-http, url: "${upstreamUrl}" }
    credential: { mode: shared-key, secretRef: vault-key }
groups:
  - { id: engineers, match: [{ claim: groups, equals: engineers }] }
  - { id: admins, match: [{ user: carol }] }
rules:
  - { id: engineers-vault, effect: allow, principals: [group:engineers], servers: [vault], tools: [echo] }
`;

/** An initialize request as a client sends it straight to the relay. */
export const INITIALIZE_REQUEST = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'direct', version: '1' } },
});
export const MCP_POST_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

export interface AuthorizingPolicyServer {
  idp: LocalIdp;
  upstream: KeyedUpstream;
  server: RunningPolicyServer;
  /** The authorization server's issuer, `<url>/oauth`. */
  issuer: string;
  /** The relay URL of `vault`, also its resource indicator. */
  relayUrl: string;
  /** Restarts the policy server on its port with new authorization server keys: every relay token it issued is then refused. */
  restartWithNewKeys(): Promise<void>;
  stop(): Promise<void>;
}

export async function startAuthorizingPolicyServer(
  serviceKey: string,
  idpOptions: LocalIdpOptions = {},
  /** More policy server flags (e.g. `--relay-requires-dpop`). */
  extraArgs: string[] = [],
): Promise<AuthorizingPolicyServer> {
  const idp = await startLocalIdp({ ...idpOptions, signInClient: SIGN_IN_CLIENT });
  const upstream = await startKeyedUpstream(serviceKey);
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-as-'));
  const keyFile = await secretStoreWith(scratch, 'vault-key', serviceKey);
  const secretFile = join(scratch, 'sign-in-client-secret');
  writeFileSync(secretFile, SIGN_IN_CLIENT.clientSecret, { mode: 0o600 });
  const options = {
    dataDir: scratch,
    policyYaml: VAULT_POLICY(upstream.url),
    extraArgs: [
      '--secrets-key-file',
      keyFile,
      '--sign-in-client-id',
      SIGN_IN_CLIENT.clientId,
      '--sign-in-client-secret-file',
      secretFile,
      '--sign-in-scope',
      'openid email profile groups',
      ...extraArgs,
    ],
  };
  let server = await startPolicyServer(idp, options);
  return {
    idp,
    upstream,
    get server() {
      return server;
    },
    restartWithNewKeys: async () => {
      await server.stop();
      rmSync(join(scratch, 'data', AUTHORIZATION_KEY_FILE));
      server = await startPolicyServer(idp, { ...options, port: Number(new URL(server.url).port) });
    },
    issuer: `${server.url}/oauth`,
    relayUrl: `${server.url}/relay/vault/mcp`,
    stop: async () => {
      await server.stop();
      await upstream.stop();
      await idp.stop();
      removeDir(server.dir);
    },
  };
}
