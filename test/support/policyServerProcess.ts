/**
 * The policy server as a process for the policy server suite (test/integration/policyServerSuite.ts):
 * dist/gatehouse.js policy-server started against a local IdP and stopped with SIGTERM, the
 * `gatehouse` CLI run to completion, and the example policy the suite publishes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { PolicyServerReadyLine } from '../../common/policy/policyServerApi';
import { NODE, REPO, runProcess } from './gatewayHarness';
import type { LocalIdp } from './localIdp';

export const GATEHOUSE = join(REPO, 'dist/gatehouse.js');
export const EXAMPLE_POLICY = join(REPO, 'examples/org-policy.yaml');

export interface RunningServer {
  ready: PolicyServerReadyLine;
  child: ChildProcess;
  dataDir: string;
  stderr(): string;
  stop(): Promise<void>;
}

export async function startServer(idp: LocalIdp, dataDir: string, extraArgs: string[] = []): Promise<RunningServer> {
  const child = spawn(
    NODE,
    [
      GATEHOUSE,
      'policy-server',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--oidc-issuer',
      idp.issuer,
      '--oidc-audience',
      idp.audience,
      ...extraArgs,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const ready = await new Promise<PolicyServerReadyLine>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`policy server not ready in 20 s: ${stderr}`));
    }, 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as PolicyServerReadyLine;
      if (parsed.event === 'ready') {
        clearTimeout(timer);
        resolve(parsed);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`policy server exited with ${code}: ${stderr}`));
    });
  });
  return {
    ready,
    child,
    dataDir,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await runProcess(NODE, [GATEHOUSE, ...args]);
  return { code, stdout, stderr };
}

export const examplePolicy = readFileSync(EXAMPLE_POLICY, 'utf8');
/** The example policy plus carol as a second admin, so someone can revoke alice. */
export const withCarolAdmin = examplePolicy.replace(
  'match: [{ user: alice@example.com }]',
  'match: [{ user: alice@example.com }, { user: carol@example.com }]',
);
