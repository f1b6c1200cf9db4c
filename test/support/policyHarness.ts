/**
 * Starts the real policy server (dist/gatehouse.js policy-server) against a real local IdP,
 * for tests that need managed gateways. Tokens come from the IdP's real authorization
 * code flow and are handed over in 0600 files, as the product does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NODE, REPO, runProcess } from './gatewayHarness';
import type { LocalIdp } from './localIdp';

export interface RunningPolicyServer {
  url: string;
  dir: string;
  child: ChildProcess;
  /** Pinned key set for gateways, written to a file. */
  keysPath: string;
  /** What the server logged so far. */
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `policyYaml`: the first policy as text (written into the server's folder); `bootstrapPolicy`: a file with it. */
export async function startPolicyServer(
  idp: LocalIdp,
  options: { dataDir?: string; bootstrapPolicy?: string; policyYaml?: string; port?: number; extraArgs?: string[] } = {},
): Promise<RunningPolicyServer> {
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-policy-'));
  if (options.policyYaml !== undefined) {
    options = { ...options, bootstrapPolicy: join(dir, 'org-policy.yaml') };
    writeFileSync(options.bootstrapPolicy!, options.policyYaml!);
  }
  const args = [
    join(REPO, 'dist/gatehouse.js'),
    'policy-server',
    '--data-dir',
    join(dir, 'data'),
    '--listen',
    `127.0.0.1:${options.port ?? 0}`,
    '--oidc-issuer',
    idp.issuer,
    '--oidc-audience',
    idp.audience,
  ];
  if (options.bootstrapPolicy) args.push('--bootstrap-policy', options.bootstrapPolicy);
  args.push(...(options.extraArgs ?? []));
  const child = spawn(NODE, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const ready = await new Promise<{ url: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`policy server not ready: ${stderr}`));
    }, 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as { event?: string; url?: string };
        if (parsed.event === 'ready' && parsed.url) {
          clearTimeout(timer);
          resolve({ url: parsed.url });
        }
      } catch {
        /* not the ready line */
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`policy server exited ${code}: ${stderr}`));
    });
  });
  const jwks = await (await fetch(`${ready.url}/.well-known/jwks.json`)).text();
  const keysPath = join(dir, 'pinned-jwks.json');
  writeFileSync(keysPath, jwks);
  return {
    url: ready.url,
    dir,
    child,
    keysPath,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill(signal);
        await exited;
      }
    },
  };
}

/** Command-line arguments that make a gateway managed by `server` for the user whose token is at `tokenPath`. */
export function managedArgs(server: RunningPolicyServer, tokenPath: string): string[] {
  return ['--policy-server', server.url, '--policy-keys', server.keysPath, '--policy-token-file', tokenPath];
}

/** Writes `token` to a 0600 file in `dir` and returns its path. */
export function tokenFile(dir: string, name: string, token: string): string {
  const path = join(dir, `${name}.token`);
  writeFileSync(path, token, { mode: 0o600 });
  return path;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A secret store for a policy server started with `dataDir: scratch`: its key file made by
 * the real `gatehouse secret init-key` (returned), and `secretRef` set to `value` by the real
 * `gatehouse secret set`.
 */
export async function secretStoreWith(scratch: string, secretRef: string, value: string): Promise<string> {
  const keyFile = join(scratch, 'secrets.key');
  await runProcess(NODE, [join(REPO, 'dist/gatehouse.js'), 'secret', 'init-key', keyFile]).then(({ code, stderr }) => {
    if (code !== 0) throw new Error(`secret init-key exited ${code}: ${stderr}`);
  });
  // The harness keeps the server's data in <scratch>/data.
  await setSecret(join(scratch, 'data'), keyFile, secretRef, value);
  return keyFile;
}

/** The real CLI, the secret value on stdin. */
export function setSecret(dataDir: string, keyFile: string, id: string, value: string, extraArgs: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      NODE,
      [join(REPO, 'dist/gatehouse.js'), 'secret', 'set', id, '--data-dir', dataDir, '--key-file', keyFile, ...extraArgs],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`secret set exited ${code}: ${out}`))));
    child.stdin.end(`${value}\n`);
  });
}

/**
 * Every file under `dir`, as text (to show a secret is on no disk). A running process may
 * rename an atomic write's temporary file away between the listing and the read; such a file
 * is skipped (its text lands in the file it was renamed to), anything else still throws.
 */
export function filesUnder(dir: string): string {
  let text = '';
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    try {
      if (statSync(path).isFile()) text += readFileSync(path, 'latin1');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return text;
}
