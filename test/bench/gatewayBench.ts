/**
 * Gateway benchmark group (`npm run bench -- gateway`).
 *
 *  1. tools/call latency (c=1) and throughput (c=32): straight to the HTTP fixture, and
 *     through the gateway to that same fixture (streamable-http upstream).
 *  2. The stdio fixture behind the gateway, mcp-proxy and supergateway (all serving
 *     Streamable HTTP, stateful): throughput at c=32, latency at c=1.
 *  3. CPU time per call of the proxying process (gateway / peer) at c=32, from /proc.
 *  4. Time until all upstreams are ready for 1 and 20 stdio upstreams (median of 3).
 *  5. Gateway RSS with 20 upstreams, each with an open client session.
 *
 * Load comes from autocannon over pre-opened sessions (the SDK client would be the
 * bottleneck). Prints a markdown table, then one JSON line starting `{"bench":"gateway"`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { GatewayReadyLine } from '../../common/gatewayReady';
import { LAUNCH_CLIENT_CAPABILITIES } from '../../gateway/upstream/upstreamPool';
import { measure, type LoadResult } from './benchLoad';
import { openSession, type McpSession } from './benchMcpSession';
import { freePort, rssMb, spawnTracked, waitForLine, type Tracked } from './benchProcesses';
import { markdownTable, median, round } from './benchStats';

const REPO = resolve(__dirname, '../..');
const NODE = process.execPath;
const FIXTURE = join(REPO, 'dist/fixtures/conformance-upstream.mjs');
const GATEWAY = join(REPO, 'dist/gatehouse.js');
const MCP_PROXY = join(REPO, 'node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs');
const SUPERGATEWAY = join(REPO, 'node_modules/supergateway/dist/index.js');

const WARMUP_S = 2;
const TIMED_S = 5;
const HIGH_CONCURRENCY = 32;
const STARTUP_REPEATS = 3;
const MANY_UPSTREAMS = 20;
/** What VS Code declares, so sessions reuse the gateway's launch-time upstream connections. */
const CLIENT_CAPABILITIES = LAUNCH_CLIENT_CAPABILITIES as Record<string, unknown>;

const TARGETS = {
  p50_added_ms: 0.5,
  p99_added_ms: 2,
  ratio_vs_direct: 1.25,
  throughput_ratio_vs_direct: 0.7,
  peer_ratio: 1.5,
  cpu_ms_per_call: 0.25,
  startup_ratio_20_vs_1: 1.5,
  rss_mb: 120,
};

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

function stdioFixture(id: string): Record<string, unknown> {
  return { id, transport: { type: 'stdio', command: NODE, args: [FIXTURE], envAllowlist: ['PATH', 'HOME'] } };
}

/** `nodeArgs` go to Node itself (the profile group passes `--cpu-prof`). */
export async function startGateway(servers: Array<Record<string, unknown>>, nodeArgs: string[] = []): Promise<RunningGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const config = join(dir, 'gateway.yaml');
  const secretFile = join(dir, 'secret');
  writeFileSync(config, stringify({ servers }));
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
    const failed = ready.servers.filter((s) => s.state !== 'ready');
    if (failed.length > 0) throw new Error(`gateway upstreams not ready: ${JSON.stringify(failed)}; stderr:\n${proc.stderr()}`);
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
async function startMcpProxy(): Promise<Running> {
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
async function startSupergateway(): Promise<Running> {
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

interface Pair {
  name: string;
  c1: LoadResult;
  cN: LoadResult;
}

async function latencyAndThroughput(name: string, session: McpSession, cpuPid?: number): Promise<Pair> {
  process.stderr.write(`[bench gateway] ${name}: c=1 then c=${HIGH_CONCURRENCY} (${WARMUP_S} s warm-up + ${TIMED_S} s each)\n`);
  const c1 = await measure(session, 1, { warmupS: WARMUP_S, seconds: TIMED_S });
  const cN = await measure(session, HIGH_CONCURRENCY, { warmupS: WARMUP_S, seconds: TIMED_S, ...(cpuPid !== undefined ? { cpuPid } : {}) });
  return { name, c1, cN };
}

/** Starts a target, measures it, and always stops it. */
async function withTarget<T extends Running>(start: () => Promise<T>, use: (target: T) => Promise<Pair>): Promise<Pair> {
  const target = await start();
  try {
    return await use(target);
  } finally {
    await target.stop();
  }
}

async function startupAndRss(): Promise<{ startup1: number[]; startup20: number[]; rss: number }> {
  const startup1: number[] = [];
  const startup20: number[] = [];
  let rss = NaN;
  for (let run = 0; run < STARTUP_REPEATS; run++) {
    for (const n of [1, MANY_UPSTREAMS]) {
      process.stderr.write(`[bench gateway] startup with ${n} stdio upstream(s), run ${run + 1}/${STARTUP_REPEATS}\n`);
      const ids = Array.from({ length: n }, (_, i) => `fixture-${String(i + 1).padStart(2, '0')}`);
      const gateway = await startGateway(ids.map(stdioFixture));
      try {
        (n === 1 ? startup1 : startup20).push(gateway.ready.startupMs);
        if (n === MANY_UPSTREAMS && run === STARTUP_REPEATS - 1) {
          // One open session per server (each checked with a tools/call), then read RSS.
          for (const server of gateway.ready.servers) await gatewaySession(gateway, server.url);
          await new Promise((r) => setTimeout(r, 500));
          rss = rssMb(gateway.pid);
        }
      } finally {
        await gateway.stop();
      }
    }
  }
  return { startup1, startup20, rss };
}

export async function runGatewayBench(): Promise<void> {
  const began = performance.now();

  // 1. Direct vs gateway, same HTTP fixture.
  const fixture = await startHttpFixture();
  let direct: Pair;
  let viaHttp: Pair;
  try {
    direct = await latencyAndThroughput(
      'direct (HTTP fixture)',
      await openSession(fixture.url, {}, CLIENT_CAPABILITIES),
      fixture.proc.child.pid,
    );
    viaHttp = await withTarget(
      () => startGateway([{ id: 'fixture-http', transport: { type: 'streamable-http', url: fixture.url } }]),
      async (gateway) => latencyAndThroughput('gateway -> HTTP fixture', await gatewaySession(gateway), gateway.pid),
    );
  } finally {
    await fixture.stop();
  }

  // 2./3. Same stdio fixture behind the gateway and the two peers.
  const viaStdio = await withTarget(
    () => startGateway([stdioFixture('fixture-stdio')]),
    async (gateway) => latencyAndThroughput('gateway -> stdio fixture', await gatewaySession(gateway), gateway.pid),
  );
  const mcpProxy = await withTarget(startMcpProxy, async (proxy) =>
    latencyAndThroughput('mcp-proxy -> stdio fixture', await openSession(proxy.url, {}, CLIENT_CAPABILITIES), proxy.proc.child.pid),
  );
  const supergateway = await withTarget(startSupergateway, async (proxy) =>
    latencyAndThroughput('supergateway -> stdio fixture', await openSession(proxy.url, {}, CLIENT_CAPABILITIES), proxy.proc.child.pid),
  );

  // 4./5. Startup with 1 and 20 upstreams; RSS with 20 sessions.
  const { startup1, startup20, rss } = await startupAndRss();

  const startup1Ms = median(startup1);
  const startup20Ms = median(startup20);
  const gatewayHttpCpu = viaHttp.cN.cpuMsPerCall!;
  const gatewayStdioCpu = viaStdio.cN.cpuMsPerCall!;
  const summary = {
    p50_added_ms: viaHttp.c1.p50 - direct.c1.p50,
    p99_added_ms: viaHttp.c1.p99 - direct.c1.p99,
    throughput_rps: viaHttp.cN.rps,
    ratio_vs_direct: viaHttp.c1.p50 / direct.c1.p50,
    throughput_ratio_vs_direct: viaHttp.cN.rps / direct.cN.rps,
    ratio_vs_mcp_proxy: viaStdio.cN.rps / mcpProxy.cN.rps,
    ratio_vs_supergateway: viaStdio.cN.rps / supergateway.cN.rps,
    // The worse of the two gateway set-ups (HTTP upstream / stdio upstream); both are below.
    cpu_ms_per_call: Math.max(gatewayHttpCpu, gatewayStdioCpu),
    startup_ratio_20_vs_1: startup20Ms / startup1Ms,
    rss_mb: rss,
  };
  const raw = {
    direct_p50_ms: direct.c1.p50,
    direct_p99_ms: direct.c1.p99,
    direct_rps: direct.cN.rps,
    gateway_p50_ms: viaHttp.c1.p50,
    gateway_p99_ms: viaHttp.c1.p99,
    gateway_rps: viaHttp.cN.rps,
    gateway_cpu_ms_per_call_http_upstream: gatewayHttpCpu,
    gateway_stdio_p50_ms: viaStdio.c1.p50,
    gateway_stdio_p99_ms: viaStdio.c1.p99,
    gateway_stdio_rps: viaStdio.cN.rps,
    gateway_cpu_ms_per_call_stdio_upstream: gatewayStdioCpu,
    mcp_proxy_p50_ms: mcpProxy.c1.p50,
    mcp_proxy_p99_ms: mcpProxy.c1.p99,
    mcp_proxy_rps: mcpProxy.cN.rps,
    mcp_proxy_cpu_ms_per_call: mcpProxy.cN.cpuMsPerCall!,
    supergateway_p50_ms: supergateway.c1.p50,
    supergateway_p99_ms: supergateway.c1.p99,
    supergateway_rps: supergateway.cN.rps,
    supergateway_cpu_ms_per_call: supergateway.cN.cpuMsPerCall!,
    direct_fixture_cpu_ms_per_call: direct.cN.cpuMsPerCall!,
    startup_ms_1: startup1Ms,
    startup_ms_20: startup20Ms,
  };
  const targetsMet = {
    p50_added_ms: summary.p50_added_ms <= TARGETS.p50_added_ms,
    p99_added_ms: summary.p99_added_ms <= TARGETS.p99_added_ms,
    ratio_vs_direct: summary.ratio_vs_direct <= TARGETS.ratio_vs_direct,
    throughput_ratio_vs_direct: summary.throughput_ratio_vs_direct >= TARGETS.throughput_ratio_vs_direct,
    ratio_vs_mcp_proxy: summary.ratio_vs_mcp_proxy >= TARGETS.peer_ratio,
    ratio_vs_supergateway: summary.ratio_vs_supergateway >= TARGETS.peer_ratio,
    cpu_ms_per_call: summary.cpu_ms_per_call <= TARGETS.cpu_ms_per_call,
    startup_ratio_20_vs_1: summary.startup_ratio_20_vs_1 <= TARGETS.startup_ratio_20_vs_1,
    rss_mb: summary.rss_mb <= TARGETS.rss_mb,
  };

  const pairs = [direct, viaHttp, viaStdio, mcpProxy, supergateway];
  const ms = (v: number) => v.toFixed(3);
  console.log(`\n## Gateway benchmark (tools/call test_simple_text; ${WARMUP_S} s warm-up + ${TIMED_S} s timed per cell)\n`);
  console.log(
    markdownTable(
      [
        'target',
        'p50 c=1 (ms)',
        'p99 c=1 (ms)',
        'calls c=1',
        `rps c=${HIGH_CONCURRENCY}`,
        `p50 c=${HIGH_CONCURRENCY} (ms)`,
        `p99 c=${HIGH_CONCURRENCY} (ms)`,
        'CPU ms/call *',
        'loadgen CPU ms/call',
      ],
      pairs.map((p) => [
        p.name,
        ms(p.c1.p50),
        ms(p.c1.p99),
        p.c1.calls,
        Math.round(p.cN.rps),
        ms(p.cN.p50),
        ms(p.cN.p99),
        p.cN.cpuMsPerCall === undefined ? '-' : ms(p.cN.cpuMsPerCall),
        ms(p.cN.loadgenCpuMsPerCall),
      ]),
    ),
  );
  console.log(`\n* at c=${HIGH_CONCURRENCY}, utime+stime of the proxying process (gateway / peer); for "direct", of the fixture itself.`);
  console.log(
    `\nStartup until all upstreams ready (ms, ready line startupMs): 1 upstream ${startup1.join(', ')} (median ${startup1Ms}); ` +
      `${MANY_UPSTREAMS} upstreams ${startup20.join(', ')} (median ${startup20Ms})`,
  );
  console.log(`Gateway RSS with ${MANY_UPSTREAMS} upstreams and ${MANY_UPSTREAMS} open sessions: ${rss.toFixed(1)} MB\n`);
  const targetText: Record<keyof typeof targetsMet, string> = {
    p50_added_ms: `<= ${TARGETS.p50_added_ms}`,
    p99_added_ms: `<= ${TARGETS.p99_added_ms}`,
    ratio_vs_direct: `<= ${TARGETS.ratio_vs_direct}`,
    throughput_ratio_vs_direct: `>= ${TARGETS.throughput_ratio_vs_direct}`,
    ratio_vs_mcp_proxy: `>= ${TARGETS.peer_ratio}`,
    ratio_vs_supergateway: `>= ${TARGETS.peer_ratio}`,
    cpu_ms_per_call: `<= ${TARGETS.cpu_ms_per_call}`,
    startup_ratio_20_vs_1: `<= ${TARGETS.startup_ratio_20_vs_1}`,
    rss_mb: `<= ${TARGETS.rss_mb}`,
  };
  console.log(
    markdownTable(
      ['metric', 'value', 'target', 'met'],
      (Object.keys(targetsMet) as Array<keyof typeof targetsMet>).map((k) => [
        k,
        round(summary[k]),
        targetText[k],
        targetsMet[k] ? 'yes' : 'NO',
      ]),
    ),
  );
  console.log('');

  const rounded = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v)]));
  console.log(
    JSON.stringify({
      bench: 'gateway',
      ...rounded(summary),
      ...rounded(raw),
      startup_runs_ms_1: startup1,
      startup_runs_ms_20: startup20,
      concurrency: HIGH_CONCURRENCY,
      timed_seconds: TIMED_S,
      bench_seconds: round((performance.now() - began) / 1000, 1),
      targets_met: targetsMet,
    }),
  );
}
