/**
 * The setup both confirmation test files share (test/integration/confirmations.test.ts and
 * developerConfirmations.test.ts): a local IdP signing in alice, bob and carol, and a real
 * policy server with a policy whose confirm rules send deploys to the `leads` group for
 * review and ask the developer for `env`; each user's token also in a 0600 file.
 */
import { join } from 'node:path';
import { FIXTURES, NODE } from './gatewayHarness';
import { startLocalIdp, type LocalIdp } from './localIdp';
import { removeDir, startPolicyServer, tokenFile, type RunningPolicyServer } from './policyHarness';

const PROBE = join(FIXTURES, 'probe-upstream.mjs');
export const CONFIRM_TIMEOUT_SECONDS = 5;

export const CONFIRM_POLICY = `version: 1
org: test
admins: [admins]
servers:
  - id: probe
    title: Probe
    transport: { type: stdio, command: ${NODE}, args: [${PROBE}] }
groups:
  - { id: engineers, match: [{ user: alice }] }
  - { id: leads, match: [{ user: alice }, { user: carol }] }
  - { id: admins, match: [{ user: carol }] }
rules:
  - id: deploys-reviewed
    effect: confirm
    principals: [group:engineers]
    servers: [probe]
    tools: [echo]
    when: args.text.startsWith("deploy")
    reason: deploys need a lead
    reviewers: leads
  - id: env-confirmed
    effect: confirm
    principals: [group:engineers]
    servers: [probe]
    tools: [env]
  - id: engineers-echo
    effect: allow
    principals: [group:engineers]
    servers: [probe]
    tools: [echo]
guardrails:
  confirmationTimeoutSeconds: ${CONFIRM_TIMEOUT_SECONDS}
`;

export interface ConfirmationSetup {
  idp: LocalIdp;
  server: RunningPolicyServer;
  tokens: Record<string, string>;
  tokenFiles: Record<string, string>;
  stop(): Promise<void>;
}

export async function startConfirmationSetup(): Promise<ConfirmationSetup> {
  const tokens: Record<string, string> = {};
  const tokenFiles: Record<string, string> = {};
  const idp = await startLocalIdp();
  for (const user of ['alice', 'bob', 'carol']) tokens[user] = await idp.tokenFor(user);
  const server = await startPolicyServer(idp, { policyYaml: CONFIRM_POLICY });
  for (const user of ['alice', 'bob', 'carol']) tokenFiles[user] = tokenFile(server.dir, user, tokens[user]!);
  return {
    idp,
    server,
    tokens,
    tokenFiles,
    async stop() {
      await server.stop();
      await idp.stop();
      removeDir(server.dir);
    },
  };
}
