/**
 * The processes the gateway benchmarks measure, each started on loopback and stopped by
 * the caller: the conformance fixture (HTTP, or stdio behind a proxy), the gateway, the
 * two peer proxies (mcp-proxy, supergateway) and the bare Node HTTP relay (the floor). Shared by the gateway, startup and
 * profile groups.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { GatewayReadyLine } from '../../common/gatewayReady';
import { LAUNCH_CLIENT_CAPABILITIES, type UpstreamStart } from '../../gateway/upstream/upstreamPool';
import { openSession, type McpSession } from './benchMcpSession';
import { freePort, spawnTracked, waitForLine, type Tracked } from './benchProcesses';

const REPO = resolve(__dirname, '../..');
const NODE = process.execPath;
const FIXTURE = join(REPO, 'dist/fixtures/conformance-upstream.mjs');
const MODERN_FIXTURE = join(REPO, 'dist/fixtures/modern-conformance-upstream.mjs');
const GATEWAY = join(REPO, 'dist/gatehouse.js');
const MCP_PROXY = join(REPO, 'node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs');
const SUPERGATEWAY = join(REPO, 'node_modules/supergateway/dist/index.js');
const BARE_RELAY = join(REPO, 'test/bench/bareHttpRelay.mjs');
/** What VS Code declares, so sessions reuse the gateway's launch-time upstream connections. */
export const CLIENT_CAPABILITIES = LAUNCH_CLIENT_CAPABILITIES as Record<string, unknown>;

export interface Running {
  proc: Tracked;
  url: string;
  stop(): Promise<void>;
}
export interface RunningGateway extends Running {
  ready: GatewayReadyLine;
  secret: string;
  pid: number;
}

export async function startHttpFixture(): Promise<Running> {
  const proc = spawnTracked('conformance-upstream --http', NODE, [FIXTURE, '--http', '0']);
  const url = await waitForLine(proc, (line) => /listening on (http:\/\/\S+)/.exec(line)?.[1]);
  return { proc, url, stop: () => proc.stop() };
}

/** The 2026-07-28-only conformance fixture (SDK v2, Streamable HTTP). */
export async function startModernFixture(): Promise<Running> {
  const proc = spawnTracked('modern-conformance-upstream', NODE, [MODERN_FIXTURE]);
  const url = await waitForLine(proc, (line) => /listening on (http:\/\/\S+)/.exec(line)?.[1]);
  return { proc, url, stop: () => proc.stop() };
}

/** The floor of a second Node HTTP hop (bareHttpRelay.mjs): bytes forwarded to `upstreamUrl`, nothing else. */
export async function startBareRelay(upstreamUrl: string): Promise<Running> {
  const proc = spawnTracked('bare HTTP relay', NODE, [BARE_RELAY, upstreamUrl]);
  const url = await waitForLine(proc, (line) => /listening on (http:\/\/\S+)/.exec(line)?.[1]);
  return { proc, url, stop: () => proc.stop() };
}

export function stdioFixture(id: string): Record<string, unknown> {
  return { id, transport: { type: 'stdio', command: NODE, args: [FIXTURE], envAllowlist: ['PATH', 'HOME'] } };
}

/**
 * A gateway serving `servers` on loopback TCP. `start`: eager (the load groups: every
 * upstream running before the ready line) or lazy (the default in production: each started
 * on first use). `nodeArgs` go to Node itself (the profile group passes `--cpu-prof`).
 */
export async function startGateway(
  servers: Array<Record<string, unknown>>,
  { start = 'eager', nodeArgs = [] }: { start?: UpstreamStart; nodeArgs?: string[] } = {},
): Promise<RunningGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const config = join(dir, 'gateway.yaml');
  const secretFile = join(dir, 'secret');
  writeFileSync(config, stringify({ servers, gateway: { upstreamStart: start } }));
  const proc = spawnTracked('gateway', NODE, [
    ...nodeArgs,
    GATEWAY,
    'gateway',
    '--config',
    config,
    '--listen',
    '127.0.0.1:0',
    '--runtime-dir',
    join(dir, 'run'),
    '--state-dir',
    join(dir, 'state'),
    '--launch-secret-file',
    secretFile,
  ]);
  const stop = async () => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ready = await waitForLine(proc, (line) => {
      try {
        const parsed = JSON.parse(line) as GatewayReadyLine;
        return parsed.event === 'ready' ? parsed : undefined;
      } catch {
        return undefined;
      }
    });
    const expected = start === 'eager' ? 'ready' : 'idle';
    const failed = ready.servers.filter((s) => s.state !== expected);
    if (failed.length > 0) throw new Error(`gateway upstreams not ${expected}: ${JSON.stringify(failed)}; stderr:\n${proc.stderr()}`);
    if (ready.pid !== proc.child.pid) throw new Error(`gateway ready line pid ${ready.pid} is not the spawned pid ${proc.child.pid}`);
    const secret = readFileSync(secretFile, 'utf8').trim();
    return { proc, url: ready.servers[0]!.url!, stop, ready, secret, pid: ready.pid };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function gatewaySession(gateway: RunningGateway, url = gateway.url): Promise<McpSession> {
  return openSession(url, { Authorization: `Bearer ${gateway.secret}` }, CLIENT_CAPABILITIES);
}

/** mcp-proxy, Streamable HTTP only, stateful (its default), spawned as `node <bin script>`. */
export async function startMcpProxy(): Promise<Running> {
  const port = await freePort();
  const proc = spawnTracked('mcp-proxy', NODE, [
    MCP_PROXY,
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--server',
    'stream',
    '--',
    NODE,
    FIXTURE,
  ]);
  return { proc, url: `http://127.0.0.1:${port}/mcp`, stop: () => proc.stop() };
}

/** supergateway stdio -> Streamable HTTP, stateful; it runs the command through a shell. */
export async function startSupergateway(): Promise<Running> {
  const port = await freePort();
  const command = `'${NODE}' '${FIXTURE}'`;
  const proc = spawnTracked('supergateway', NODE, [
    SUPERGATEWAY,
    '--stdio',
    command,
    '--outputTransport',
    'streamableHttp',
    '--stateful',
    '--port',
    String(port),
    '--logLevel',
    'none',
  ]);
  return { proc, url: `http://127.0.0.1:${port}/mcp`, stop: () => proc.stop() };
}
