/**
 * Gateway benchmark group (`npm run bench -- gateway`).
 *
 *  1. tools/call latency (c=1) and throughput (c=32): straight to the HTTP fixture,
 *     through the gateway to that same fixture (streamable-http upstream), and through a
 *     bare Node HTTP relay (bareHttpRelay.mjs: bytes forwarded, nothing else), the floor
 *     of any second Node hop, so the targets can be read against it.
 *  2. The stdio fixture behind the gateway, mcp-proxy and supergateway (all serving
 *     Streamable HTTP, stateful): throughput at c=32, latency at c=1.
 *  3. CPU time per call of the proxying process (gateway / peer) at c=32, from /proc.
 *  4. Startup for 1 and 20 stdio upstreams, lazy (the default) and eager, and the first
 *     use of an idle server (gatewayStartup.ts; medians of 3).
 *  5. Gateway RSS with 20 upstreams, each with an open client session.
 *  6. An MCP 2026-07-28 upstream (the SDK v2 fixture): straight to it with stateless
 *     requests, through the gateway from a 2025-era session (the era bridge, VS Code's
 *     path), and through the gateway from a 2026-07-28 client (stateless at the front too).
 *
 * Load comes from autocannon over pre-opened sessions (the SDK client would be the
 * bottleneck). Prints a markdown table, then one JSON line starting `{"bench":"gateway"`.
 */
import { measure, type LoadResult } from './benchLoad';
import { modernSession, openSession, type McpSession } from './benchMcpSession';
import {
  CLIENT_CAPABILITIES,
  gatewaySession,
  startGateway,
  startHttpFixture,
  startModernFixture,
  startBareRelay,
  startMcpProxy,
  startSupergateway,
  stdioFixture,
  type Running,
} from './benchTargets';
import { markdownTable, round } from './benchStats';
import { MANY_UPSTREAMS, measureStartup } from './gatewayStartup';

const WARMUP_S = 2;
const TIMED_S = 5;
const HIGH_CONCURRENCY = 32;

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

/** Starts a target, measures it in each way given (one after the other), and always stops it. */
async function withTargets<T extends Running>(start: () => Promise<T>, uses: Array<(target: T) => Promise<Pair>>): Promise<Pair[]> {
  const target = await start();
  try {
    const pairs: Pair[] = [];
    for (const use of uses) pairs.push(await use(target));
    return pairs;
  } finally {
    await target.stop();
  }
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

export async function runGatewayBench(): Promise<void> {
  const began = performance.now();

  // 1. Direct vs gateway, same HTTP fixture.
  const fixture = await startHttpFixture();
  let direct: Pair;
  let viaHttp: Pair;
  let floor: Pair;
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
    floor = await withTarget(
      () => startBareRelay(fixture.url),
      async (relay) =>
        latencyAndThroughput(
          'floor: bare Node HTTP relay -> HTTP fixture',
          await openSession(relay.url, {}, CLIENT_CAPABILITIES),
          relay.proc.child.pid,
        ),
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
  const startup = await measureStartup();

  // 6. A 2026-07-28 upstream: direct, bridged for a 2025-era session, and for a 2026-07-28 client.
  const modernFixture = await startModernFixture();
  let modernDirect: Pair;
  let modernBridged: Pair;
  let modernStateless: Pair;
  try {
    modernDirect = await latencyAndThroughput(
      'direct (2026-07-28 fixture, stateless)',
      await modernSession(modernFixture.url),
      modernFixture.proc.child.pid,
    );
    const measured = await withTargets(
      () => startGateway([{ id: 'modern', transport: { type: 'streamable-http', url: modernFixture.url } }]),
      [
        async (gateway) => latencyAndThroughput('gateway, 2025 session -> 2026-07-28 fixture', await gatewaySession(gateway), gateway.pid),
        async (gateway) =>
          latencyAndThroughput(
            'gateway, 2026-07-28 client -> 2026-07-28 fixture',
            await modernSession(gateway.url, { Authorization: `Bearer ${gateway.secret}` }),
            gateway.pid,
          ),
      ],
    );
    modernBridged = measured[0]!;
    modernStateless = measured[1]!;
  } finally {
    await modernFixture.stop();
  }

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
    // The default (lazy) start: the gateway serves before any upstream runs; eager and first use are below.
    startup_ratio_20_vs_1: startup.lazyManyMs / startup.lazyOneMs,
    rss_mb: startup.rssMb,
    // A 2026-07-28 upstream, held to the same targets: the worse of the two client eras.
    modern_p50_added_ms: Math.max(modernBridged.c1.p50, modernStateless.c1.p50) - modernDirect.c1.p50,
    modern_cpu_ms_per_call: Math.max(modernBridged.cN.cpuMsPerCall!, modernStateless.cN.cpuMsPerCall!),
  };
  const raw = {
    direct_p50_ms: direct.c1.p50,
    direct_p99_ms: direct.c1.p99,
    direct_rps: direct.cN.rps,
    floor_p50_added_ms: floor.c1.p50 - direct.c1.p50,
    floor_p99_added_ms: floor.c1.p99 - direct.c1.p99,
    floor_throughput_ratio_vs_direct: floor.cN.rps / direct.cN.rps,
    floor_cpu_ms_per_call: floor.cN.cpuMsPerCall!,
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
    startup_ms_1: startup.lazyOneMs,
    startup_ms_20: startup.lazyManyMs,
    startup_eager_ms_1: startup.eagerOneMs,
    startup_eager_ms_20: startup.eagerManyMs,
    startup_eager_ratio_20_vs_1: startup.eagerManyMs / startup.eagerOneMs,
    first_use_ms: startup.firstUseMs,
    modern_direct_p50_ms: modernDirect.c1.p50,
    modern_direct_rps: modernDirect.cN.rps,
    modern_bridged_p50_added_ms: modernBridged.c1.p50 - modernDirect.c1.p50,
    modern_bridged_p99_added_ms: modernBridged.c1.p99 - modernDirect.c1.p99,
    modern_bridged_rps: modernBridged.cN.rps,
    modern_bridged_cpu_ms_per_call: modernBridged.cN.cpuMsPerCall!,
    modern_stateless_p50_added_ms: modernStateless.c1.p50 - modernDirect.c1.p50,
    modern_stateless_p99_added_ms: modernStateless.c1.p99 - modernDirect.c1.p99,
    modern_stateless_rps: modernStateless.cN.rps,
    modern_stateless_cpu_ms_per_call: modernStateless.cN.cpuMsPerCall!,
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
    modern_p50_added_ms: summary.modern_p50_added_ms <= TARGETS.p50_added_ms,
    modern_cpu_ms_per_call: summary.modern_cpu_ms_per_call <= TARGETS.cpu_ms_per_call,
  };

  const pairs = [direct, viaHttp, floor, viaStdio, mcpProxy, supergateway, modernDirect, modernBridged, modernStateless];
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
    `\nStartup (ms, ready line startupMs, runs and median), lazy (default): 1 upstream ${startup.runs.lazy.one.join(', ')} (${startup.lazyOneMs}); ` +
      `${MANY_UPSTREAMS} upstreams ${startup.runs.lazy.many.join(', ')} (${startup.lazyManyMs}). ` +
      `Eager (every upstream running): 1 upstream ${startup.runs.eager.one.join(', ')} (${startup.eagerOneMs}); ` +
      `${MANY_UPSTREAMS} upstreams ${startup.runs.eager.many.join(', ')} (${startup.eagerManyMs}).`,
  );
  console.log(
    `First use of an idle server (session open, initialize and one tools/call through the gateway): ${startup.firstUseRuns.join(', ')} ms (median ${startup.firstUseMs})`,
  );
  console.log(`Gateway RSS with ${MANY_UPSTREAMS} upstreams and ${MANY_UPSTREAMS} open sessions: ${startup.rssMb.toFixed(1)} MB\n`);
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
    modern_p50_added_ms: `<= ${TARGETS.p50_added_ms}`,
    modern_cpu_ms_per_call: `<= ${TARGETS.cpu_ms_per_call}`,
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
      startup_runs_ms_1: startup.runs.lazy.one,
      startup_runs_ms_20: startup.runs.lazy.many,
      startup_eager_runs_ms_1: startup.runs.eager.one,
      startup_eager_runs_ms_20: startup.runs.eager.many,
      first_use_runs_ms: startup.firstUseRuns,
      concurrency: HIGH_CONCURRENCY,
      timed_seconds: TIMED_S,
      bench_seconds: round((performance.now() - began) / 1000, 1),
      targets_met: targetsMet,
    }),
  );
}
