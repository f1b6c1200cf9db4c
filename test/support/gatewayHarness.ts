/**
 * Starts the real gateway (dist/gatehouse.js, built by `npm test`) as a child process with
 * a config written for the test, waits for its ready line, and connects real SDK clients
 * to it. Nothing here stubs the gateway or the upstreams.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { ReadyNotification, StartRequest } from '../../common/control/controlProtocol';
import type { GatewayReadyLine } from '../../common/gatewayReady';

export const REPO = resolve(__dirname, '../..');
export const NODE = process.execPath;
export const BIN = join(REPO, 'node_modules/.bin');
/**
 * The official conformance suites, by path: both packages name their command `conformance`,
 * so `node_modules/.bin` would say only which one npm linked last. PINNED is the release the
 * suites must pass; NEWEST the newest on the registry (an npm alias in package.json).
 */
export const CONFORMANCE = {
  pinned: join(REPO, 'node_modules/@modelcontextprotocol/conformance/dist/index.js'),
  newest: join(REPO, 'node_modules/mcp-conformance-next/dist/index.js'),
};
export const FIXTURES = join(REPO, 'dist/fixtures');

export interface ServerSpec {
  id: string;
  title?: string;
  transport: Record<string, unknown>;
  redaction?: { pii: boolean };
  trusted?: boolean;
  tools?: Record<string, { risk?: 'read' | 'write' | 'destructive' }>;
  credential?: Record<string, unknown>;
}

export interface RunningGateway {
  ready: GatewayReadyLine;
  secret: string;
  baseUrl: string;
  child: ChildProcess;
  dir: string;
  /** Everything the gateway wrote to stderr so far. */
  stderr(): string;
  stdout(): string;
  /** The control channel, when started with `control: true`. */
  control?: MessageConnection;
  url(serverId: string): string;
  connect(serverId: string, options?: { capabilities?: ClientCapabilities; name?: string }): Promise<Client>;
  /** Stops the process and, unless `keepDir`, removes its folder. */
  stop(keepDir?: boolean): Promise<void>;
}

export function stdioServer(id: string, command: string, args: string[] = [], extra: Record<string, unknown> = {}): ServerSpec {
  return { id, transport: { type: 'stdio', command, args, envAllowlist: ['PATH', 'HOME'], ...extra } };
}

export function fixtureServer(id: string, fixture: string, args: string[] = []): ServerSpec {
  return stdioServer(id, NODE, [join(FIXTURES, `${fixture}.mjs`), ...args]);
}

/** `servers: null` starts a managed gateway with no local config (pass --policy-* in extraArgs). */
export interface GatewayOptions {
  gateway?: Record<string, unknown>;
  extraArgs?: string[];
  listen?: string;
  dir?: string;
  /** Act as the extension: speak the control channel on the child's stdio and send the launch secret over it. */
  control?: boolean;
  /** With `control`: set up handlers (e.g. `gatehouse/token`) before the gateway starts asking. */
  onControl?: (connection: MessageConnection) => void;
}

export async function startGateway(servers: ServerSpec[] | null, options: GatewayOptions = {}): Promise<RunningGateway> {
  if (options.control) return startControlledGateway(servers, options);
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const configArgs = writeConfig(servers, options, dir);
  const secretPath = join(dir, 'launch-secret');
  const child = spawnGateway(dir, configArgs, options, ['--launch-secret-file', secretPath]);

  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const ready = await new Promise<GatewayReadyLine>((resolveReady, rejectReady) => {
    const reject = (error: Error) => {
      child.kill('SIGTERM'); // a gateway that never got ready must not outlive the test
      rejectReady(error);
    };
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`gateway not ready in 30 s; stderr:\n${stderr}`)), 30_000);
    lines.on('line', (line) => {
      stdout += line + '\n';
      const parsed = JSON.parse(line) as GatewayReadyLine;
      if (parsed.event === 'ready') {
        clearTimeout(timer);
        resolveReady(parsed);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before ready; stderr:\n${stderr}`));
    });
  });
  const secret = readFileSync(secretPath, 'utf8').trim();
  return runningGateway(
    ready,
    secret,
    child,
    dir,
    () => stderr,
    () => stdout,
  );
}

/** `--config <file>` for an unmanaged gateway's servers, or nothing for a managed one. */
function writeConfig(servers: ServerSpec[] | null, options: GatewayOptions, dir: string): string[] {
  if (!servers) return [];
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(configPath, stringify({ servers, ...(options.gateway ? { gateway: options.gateway } : {}) }));
  return ['--config', configPath];
}

/**
 * A gateway started as the extension starts it: `--control stdio`, the launch secret sent in
 * `gatehouse/start`, readiness from `gatehouse/ready`. The test answers `gatehouse/confirm`
 * through `gateway.control`, a real vscode-jsonrpc connection.
 */
/** The gateway process with its config, listen address, folders, the given secret delivery, and the test's extra options. */
function spawnGateway(dir: string, configArgs: string[], options: GatewayOptions, secretArgs: string[]) {
  const folders = ['--runtime-dir', join(dir, 'run'), '--state-dir', join(dir, 'state')];
  const listen = ['--listen', options.listen ?? '127.0.0.1:0'];
  const args = ['gateway', ...configArgs, ...listen, ...folders, ...secretArgs, ...(options.extraArgs ?? [])];
  return spawn(NODE, [join(REPO, 'dist/gatehouse.js'), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
}

async function startControlledGateway(servers: ServerSpec[] | null, options: GatewayOptions): Promise<RunningGateway> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const configArgs = writeConfig(servers, options, dir);
  const child = spawnGateway(dir, configArgs, options, ['--control', 'stdio', '--launch-secret-stdin']);

  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const control = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  const readyNotice = new Promise<GatewayReadyLine>((resolve) => control.onNotification(ReadyNotification, resolve));
  options.onControl?.(control);
  control.listen();
  const secret = randomBytes(32).toString('base64url');
  const exited = new Promise<never>((_resolve, reject) =>
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code} before ready; stderr:\n${stderr}`))),
  );
  exited.catch(() => undefined);
  const timeout = new Promise<never>((_resolve, reject) =>
    setTimeout(() => reject(new Error(`gateway not ready in 30 s; stderr:\n${stderr}`)), 30_000).unref(),
  );
  timeout.catch(() => undefined);
  let ready: GatewayReadyLine;
  try {
    await Promise.race([control.sendRequest(StartRequest, { launchSecret: secret }), exited, timeout]);
    ready = await Promise.race([readyNotice, exited, timeout]);
  } catch (error) {
    child.kill('SIGTERM');
    throw error;
  }
  return runningGateway(
    ready,
    secret,
    child,
    dir,
    () => stderr,
    () => '',
    control,
  );
}

function runningGateway(
  ready: GatewayReadyLine,
  secret: string,
  child: ChildProcess,
  dir: string,
  stderr: () => string,
  stdout: () => string,
  control?: MessageConnection,
): RunningGateway {
  const baseUrl = ready.listen.type === 'tcp' ? `http://127.0.0.1:${ready.listen.port}` : 'http://localhost';
  const clients: Client[] = [];
  const gateway: RunningGateway = {
    ready,
    secret,
    baseUrl,
    child,
    dir,
    stderr,
    stdout,
    ...(control ? { control } : {}),
    url: (serverId) => `${baseUrl}/mcp/${serverId}`,
    async connect(serverId, connectOptions = {}) {
      const client = new Client(
        { name: connectOptions.name ?? 'gatehouse-test', version: '1.0.0' },
        { capabilities: connectOptions.capabilities ?? {} },
      );
      const transport = new StreamableHTTPClientTransport(new URL(gateway.url(serverId)), {
        requestInit: { headers: { Authorization: `Bearer ${secret}` } },
      });
      await client.connect(transport);
      clients.push(client);
      return client;
    },
    async stop(keepDir = false) {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      control?.dispose();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return gateway;
}

/** Raw HTTP to the gateway, for what SDK clients never send (bad secrets, foreign origins, garbage). */
export async function rawPost(
  url: string,
  body: string | Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(url, {
    method: 'POST',
    body: typeof body === 'string' ? body : new Uint8Array(body),
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolvePort) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolvePort(port));
    });
  });
}

/** server-everything over HTTP as its own process, standing in for a remote MCP server. */
export function startEverythingHttp(port: number, mode: 'streamableHttp' | 'sse' = 'streamableHttp'): Promise<ChildProcess> {
  const child = spawn(NODE, [join(REPO, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), mode], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolveStart, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`server-everything ${mode} not ready: ${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/listening|running|port/i.test(output)) {
        clearTimeout(timer);
        resolveStart(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`server-everything ${mode} exited: ${output}`));
    });
  });
}

/** Polls `condition` until it holds; resolves with how long that took, rejects after `timeoutMs`. */
/** Starts a bundled HTTP fixture (dist/fixtures/<name>.mjs) and resolves with the URL it prints once listening. */
export async function startHttpFixture(name: string, args: string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(NODE, [join(FIXTURES, `${name}.mjs`), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 15 s`)), 15_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const found = /listening on (http:\/\/\S+)/.exec(line)?.[1];
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}`));
    });
  });
  return { child, url };
}

export async function waitUntil(condition: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 25): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await condition()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('');
}

/** Runs a command to its end with only PATH and HOME, collecting stdout and stderr together. */
/** Runs a command to its end with a minimal environment; its output as it interleaved, and each stream apart. */
export function runProcess(
  command: string,
  args: string[],
  cwd?: string,
): Promise<{ code: number | null; output: string; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, {
      ...(cwd !== undefined ? { cwd } : {}),
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => {
      output += c.toString();
      stdout += c.toString();
    });
    child.stderr!.on('data', (c: Buffer) => {
      output += c.toString();
      stderr += c.toString();
    });
    child.on('close', (code) => resolveRun({ code, output, stdout, stderr }));
  });
}

export { settledSpoolEvents, spoolEvents } from './spoolEvents';
