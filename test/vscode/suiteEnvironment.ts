/**
 * What the real-VS-Code suite runs against, whichever VS Code hosts it (code-server here,
 * desktop VS Code through @vscode/test-electron where it can be downloaded): a real local
 * IdP (oidc-provider) and the real policy server with a test org policy; the extension set to
 * sign in with that IdP (alice signs in as the suite's first step), so its gateway is
 * managed for her; bob's call queued for alice's review; a week of older calls (100,000 events) in
 * alice's gateway spool for the Audit view; an MCP 2026-07-28-only server (the SDK v2 fixture)
 * for the era bridge; a shared-key server behind the policy server's relay, which takes only
 * relay tokens bound to the gateway's key; the user settings pointing at all of it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeUserSettings } from './codeServer';
import { seedAuditTrail } from './seedAuditTrail';
import { RESOURCE_SCOPE, startLocalIdp, VSCODE_CLIENT_ID } from '../support/localIdp';
import { removeDir, secretStoreWith, startPolicyServer } from '../support/policyHarness';
import { SIGN_IN_CLIENT } from '../support/authorizingPolicyServer';
import { startKeyedUpstream } from '../support/keyedUpstream';
import { READ_SCOPE, startOAuthUpstream } from '../support/oauthUpstream';
import { startHttpFixture } from '../support/gatewayHarness';

const REPO = resolve(__dirname, '../..');
const RELAYED_KEY = `sk-live-${'0bad5eed'.repeat(4)}`;

const ORG_POLICY = `version: 1
org: vscode-test
admins: [admins]
servers:
  - id: probe
    title: Probe
    transport: { type: stdio, command: ${process.execPath}, args: [${join(REPO, 'dist/fixtures/probe-upstream.mjs')}] }
  - id: vault
    title: Secrets vault
    transport: { type: streamable-http, url: "http://127.0.0.1:9/mcp" }
  - id: notes
    title: Notes
    transport: { type: streamable-http, url: "NOTES_URL" }
    credential: { mode: user-oauth }
  - id: modern
    title: Modern
    transport: { type: streamable-http, url: "MODERN_URL" }
  - id: relayed
    title: Relayed vault
    transport: { type: streamable-http, url: "RELAYED_URL" }
    credential: { mode: shared-key, secretRef: relayed-key }
groups:
  - { id: engineers, match: [{ user: alice }] }
  - { id: admins, match: [{ user: alice }] }
  - { id: leads, match: [{ user: alice }] }
  - { id: requesters, match: [{ user: bob }] }
rules:
  - { id: engineers-probe, effect: allow, principals: [group:engineers], servers: [probe], tools: [echo, weather, pid] }
  - { id: engineers-notes, effect: allow, principals: [group:engineers], servers: [notes], tools: ["*"] }
  - { id: engineers-modern, effect: allow, principals: [group:engineers], servers: [modern], tools: [echo] }
  - { id: engineers-relayed, effect: allow, principals: [group:engineers], servers: [relayed], tools: [echo] }
  - { id: env-needs-confirmation, effect: confirm, principals: [group:engineers], servers: [probe], tools: [env], reason: it reveals the environment }
  - { id: no-crashes, effect: deny, principals: ["*"], servers: [probe], tools: [crash], reason: crashing upstreams is not allowed }
  - { id: pid-reviewed, effect: confirm, principals: [group:requesters], servers: [probe], tools: [pid], reviewers: leads, reason: a lead looks first }
guardrails:
  confirmationTimeoutSeconds: 300
`;

export interface SuiteEnvironment {
  scratch: string;
  workspace: string;
  userData: string;
  /** Where alice signs in (the local IdP's issuer). */
  idpIssuer: string;
  /** After the suite: whether the policy server saw alice approve bob's review from VS Code. */
  reviewApproved(): Promise<boolean>;
  dispose(): Promise<void>;
}

export async function prepareSuiteEnvironment(): Promise<SuiteEnvironment> {
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-vscode-'));
  const workspace = join(scratch, 'workspace');
  const userData = join(scratch, 'user-data');
  mkdirSync(workspace, { recursive: true });
  // An MCP server that wants the user's own OAuth sign-in, at the same IdP (its authorization server).
  const notes = await startOAuthUpstream();
  // An MCP 2026-07-28-only server (SDK v2), which VS Code (a 2025-era client) reaches through the gateway's bridge.
  const modern = await startHttpFixture('modern-upstream');
  // On 127.0.0.2: code-server turns links to 127.0.0.1 and localhost into its port proxy, which drops their path.
  // A server with a shared service key, reached only through the policy server's relay.
  const relayed = await startKeyedUpstream(RELAYED_KEY);
  const idp = await startLocalIdp({
    host: '127.0.0.2',
    mcpResource: { url: notes.url, scopes: [READ_SCOPE] },
    signInClient: SIGN_IN_CLIENT,
  });
  notes.trust(idp.issuer);
  // The policy server as an authorization server whose relay takes only relay tokens bound to the
  // gateway's key: a relayed call from VS Code that works shows the gateway got and proved one.
  const policyDir = mkdtempSync(join(tmpdir(), 'gatehouse-vscode-policy-'));
  const keyFile = await secretStoreWith(policyDir, 'relayed-key', RELAYED_KEY);
  const signInSecret = join(policyDir, 'sign-in-client-secret');
  writeFileSync(signInSecret, SIGN_IN_CLIENT.clientSecret, { mode: 0o600 });
  const policyServer = await startPolicyServer(idp, {
    dataDir: policyDir,
    policyYaml: ORG_POLICY.replace('NOTES_URL', notes.url).replace('MODERN_URL', modern.url).replace('RELAYED_URL', relayed.url),
    extraArgs: [
      ...['--secrets-key-file', keyFile, '--relay-requires-dpop'],
      ...['--sign-in-client-id', SIGN_IN_CLIENT.clientId, '--sign-in-client-secret-file', signInSecret],
    ],
  });
  // Bob's call waits for a lead's review; alice, in VS Code, is that lead.
  const bobToken = await idp.tokenFor('bob');
  const queued = await fetch(`${policyServer.url}/v1/reviews`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${bobToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ server: 'probe', method: 'tools/call', tool: 'pid', arguments: { why: 'debugging a hang' } }),
  });
  if (queued.status !== 201) throw new Error(`could not queue bob's review: HTTP ${queued.status} ${await queued.text()}`);
  const review = ((await queued.json()) as { review: { id: string } }).review;
  // The first window's state slot, where VS Code keeps the extension's global storage (extension/gateway/stateSlot.ts).
  const seeding = performance.now();
  await seedAuditTrail(join(userData, 'User', 'globalStorage', 'gatehouse.gatehouse', 'state', 'audit'), 100_000, 'alice');
  process.stdout.write(`audit: seeded 100,000 events in ${Math.round(performance.now() - seeding)} ms\n`);
  // Alice signs in from VS Code with the org's IdP (the suite's first step; the runner types her name in the IdP's login page).
  writeUserSettings(userData, {
    'gatehouse.policyServer.url': policyServer.url,
    'gatehouse.policyServer.keysFile': policyServer.keysPath,
    'gatehouse.signIn.provider': 'oidc',
    'gatehouse.signIn.oidc.issuer': idp.issuer,
    'gatehouse.signIn.oidc.clientId': VSCODE_CLIENT_ID,
    'gatehouse.signIn.oidc.resource': idp.audience,
    'gatehouse.signIn.scopes': ['email', 'profile', 'offline_access', RESOURCE_SCOPE],
  });
  return {
    scratch,
    workspace,
    userData,
    idpIssuer: idp.issuer,
    async reviewApproved() {
      const decided = (await (
        await fetch(`${policyServer.url}/v1/reviews/${review.id}`, { headers: { Authorization: `Bearer ${bobToken}` } })
      ).json()) as { review?: { state: string; reviewer?: { sub: string } } };
      if (decided.review?.state === 'approved' && decided.review.reviewer?.sub === 'alice') {
        process.stdout.write('review: approved by alice from the Pending reviews view\n');
        return true;
      }
      process.stderr.write(`bob's review was not approved by alice from VS Code: ${JSON.stringify(decided)}\n`);
      return false;
    },
    async dispose() {
      await policyServer.stop();
      await idp.stop();
      await notes.stop();
      await relayed.stop();
      modern.child.kill();
      removeDir(policyServer.dir);
      if (!process.env.GATEHOUSE_KEEP_VSCODE_SCRATCH) rmSync(scratch, { recursive: true, force: true });
    },
  };
}
