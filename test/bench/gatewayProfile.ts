/**
 * Where a governed call's CPU goes (`npm run bench -- profile`): the gateway in front of the
 * HTTP fixture, and in front of the 2026-07-28 fixture for a 2025 session (the era bridge)
 * and for a 2026-07-28 client (the stateless front), under the gateway bench's c=32
 * tools/call load, with V8's sampling profiler
 * on (`--cpu-prof`, one sample a millisecond). Each sample's frame is mapped back through the bundle's source
 * map to the file it came from and counted for the code that caused it (SDK transport,
 * undici, redaction, audit, JSON, GC, ...): Node's internals and builtins count for their
 * nearest caller in the bundle. The buckets' shares of the busy samples, times the
 * CPU per call measured from /proc over the timed run, give microseconds per call. The raw
 * profile is kept in results/ for a flame graph (Chrome DevTools or speedscope).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { measure } from './benchLoad';
import { markdownTable, round } from './benchStats';
import { modernSession, type McpSession } from './benchMcpSession';
import { gatewaySession, startGateway, startHttpFixture, startModernFixture, type Running, type RunningGateway } from './benchTargets';

const REPO = resolve(__dirname, '../..');
const BUNDLE = join(REPO, 'dist/gatehouse.js');
const CONCURRENCY = 32;
const WARMUP_S = 2;
const TIMED_S = 10;
/** Native stream writes: the time in them is the kernel's send path. */
const SOCKET_WRITES = new Set(['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString']);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

/** Which bucket a source file belongs to; undefined for files that say nothing by themselves. */
function bucketOfSource(source: string): string {
  const rules: Array<[RegExp, string]> = [
    [/node_modules\/@modelcontextprotocol\/sdk\//, 'MCP SDK (client-facing Streamable HTTP transport)'],
    [/node_modules\/@modelcontextprotocol\/(server|core)\//, 'MCP SDK v2 (2026-07-28 front: classification, per-request transport)'],
    [/node_modules\/zod\//, 'zod (SDK message validation)'],
    [/node_modules\/undici\//, 'undici (upstream HTTP client)'],
    [/node_modules\/eventsource-parser\//, 'eventsource-parser (upstream SSE)'],
    [/node_modules\//, 'other libraries'],
    [/gateway\/http\//, 'gateway HTTP front (auth, Host/Origin, web bridge, event store)'],
    [/gateway\/(session|call)\//, 'session and call pipeline'],
    [/gateway\/guardrails\/redaction\//, 'secret redaction'],
    [/gateway\/guardrails\/injection\//, 'injection scan'],
    [/gateway\/guardrails\//, 'tool guard (pins, argument schemas)'],
    [/gateway\/audit\//, 'audit (event, hash chain, spool write)'],
    [/gateway\/upstream\//, 'upstream connection and transport'],
    [/gateway\/policy\/|common\/policy\//, 'policy'],
    [/common\/audit\/|common\/appendOnlyFile/, 'audit (event, hash chain, spool write)'],
  ];
  for (const [pattern, bucket] of rules) if (pattern.test(source)) return bucket;
  return 'other gateway code';
}

/** Maps frames of the bundle back to their source files (memoised per line:column). */
function sourceOf(map: SourceMap, cache: Map<string, string>, frame: ProfileNode['callFrame']): string {
  const key = `${frame.lineNumber}:${frame.columnNumber}`;
  let source = cache.get(key);
  if (source === undefined) {
    const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string };
    source = entry.originalSource ?? '';
    cache.set(key, source);
  }
  return source;
}

/**
 * Samples per bucket, each counted for the code that caused it: the nearest frame on the
 * stack from the bundle (Gatehouse or a library in it), so Node's socket writes under a
 * `res.write` count for whoever wrote. Samples with no bundle frame on the stack (Node
 * parsing a request before any handler runs, timers, GC) keep their own kind. `inNode`
 * counts the samples whose own frame is Node's (`node:` internals), per bucket.
 */
function bucketsOf(profile: CpuProfile): { counts: Map<string, number>; inNode: Map<string, number> } {
  const map = new SourceMap(JSON.parse(readFileSync(`${BUNDLE}.map`, 'utf8')));
  const cache = new Map<string, string>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const ownerOf = new Map<number, string | null>();
  const ownKind = (frame: ProfileNode['callFrame']): string | null => {
    if (frame.functionName === '(idle)') return null;
    if (frame.functionName === '(garbage collector)') return 'garbage collection';
    if (frame.url.startsWith('node:')) return "Node's http, net and streams (no Gatehouse frame on the stack)";
    return 'V8 and native (no Gatehouse frame on the stack)';
  };
  const owner = (id: number): string | null => {
    const known = ownerOf.get(id);
    if (known !== undefined) return known;
    const frame = byId.get(id)!.callFrame;
    let bucket: string | null;
    // The system calls themselves, whoever made them: what a proxy cannot avoid paying per message.
    if (frame.url === '' && SOCKET_WRITES.has(frame.functionName)) bucket = 'socket writes (the system calls)';
    else if (frame.url === '' && frame.functionName === 'fdatasync') bucket = 'audit (event, hash chain, spool write)';
    else if (frame.url.endsWith('/gatehouse.js')) bucket = bucketOfSource(sourceOf(map, cache, frame));
    else if (frame.url === '' && (frame.functionName === 'parse' || frame.functionName === 'stringify')) bucket = 'JSON parse / stringify';
    else {
      const up = parent.get(id);
      const above = up === undefined ? undefined : owner(up);
      bucket = above === undefined || above === null || above.includes('no Gatehouse frame') ? ownKind(frame) : above;
      if (frame.functionName === '(idle)') bucket = null;
      if (frame.functionName === '(garbage collector)') bucket = 'garbage collection';
    }
    ownerOf.set(id, bucket);
    return bucket;
  };
  const counts = new Map<string, number>();
  const inNode = new Map<string, number>();
  for (const sample of profile.samples) {
    const bucket = owner(sample);
    if (bucket === null) continue;
    counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
    if (byId.get(sample)!.callFrame.url.startsWith('node:')) inNode.set(bucket, (inNode.get(bucket) ?? 0) + 1);
  }
  return { counts, inNode };
}

/** A path through the gateway to profile: how to start its upstream, and the client session to load it with. */
interface ProfiledPath {
  name: string;
  /** The file name under results/ for its raw profile. */
  file: string;
  startUpstream: () => Promise<Running>;
  session: (gateway: RunningGateway) => Promise<McpSession>;
}

const PATHS: ProfiledPath[] = [
  { name: 'gateway -> HTTP fixture', file: 'gateway.cpuprofile', startUpstream: startHttpFixture, session: (g) => gatewaySession(g) },
  {
    name: '2025 session -> 2026-07-28 fixture (the era bridge)',
    file: 'gateway-bridged.cpuprofile',
    startUpstream: startModernFixture,
    session: (g) => gatewaySession(g),
  },
  {
    name: '2026-07-28 client -> 2026-07-28 fixture (stateless front)',
    file: 'gateway-stateless.cpuprofile',
    startUpstream: startModernFixture,
    session: (g) => modernSession(g.url, { Authorization: `Bearer ${g.secret}` }),
  },
];

export async function runGatewayProfile(): Promise<void> {
  for (const path of PATHS) await profilePath(path);
}

async function profilePath(path: ProfiledPath): Promise<void> {
  const profileDir = mkdtempSync(join(tmpdir(), 'gatehouse-profile-'));
  const fixture = await path.startUpstream();
  let cpuMsPerCall: number;
  let rps: number;
  try {
    const gateway = await startGateway([{ id: 'fixture-http', transport: { type: 'streamable-http', url: fixture.url } }], {
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir],
    });
    try {
      process.stderr.write(`[bench profile] ${path.name}, c=${CONCURRENCY}, ${WARMUP_S} s warm-up + ${TIMED_S} s, profiled\n`);
      const load = await measure(await path.session(gateway), CONCURRENCY, { warmupS: WARMUP_S, seconds: TIMED_S, cpuPid: gateway.pid });
      cpuMsPerCall = load.cpuMsPerCall!;
      rps = load.rps;
    } finally {
      await gateway.stop(); // SIGTERM: the gateway exits and V8 writes the profile
    }
  } finally {
    await fixture.stop();
  }
  const file = readdirSync(profileDir).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`the gateway wrote no CPU profile into ${profileDir}`);
  const profile = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as CpuProfile;
  mkdirSync(join(REPO, 'results'), { recursive: true });
  const kept = join(REPO, 'results', path.file);
  copyFileSync(join(profileDir, file), kept);
  rmSync(profileDir, { recursive: true, force: true });

  const { counts, inNode } = bucketsOf(profile);
  const busy = [...counts.values()].reduce((a, b) => a + b, 0);
  const rows = [...counts].sort((a, b) => b[1] - a[1]);
  const usPerCall = (samples: number) => (samples / busy) * cpuMsPerCall * 1000;
  console.log(`\n## Where a governed call's CPU goes (${path.name}, c=${CONCURRENCY}, ${Math.round(rps)} calls/s)\n`);
  console.log(
    markdownTable(
      ['bucket (the code that caused the work)', 'share of busy samples', 'µs per call', 'of which in Node internals'],
      rows.map(([bucket, samples]) => [
        bucket,
        `${((samples / busy) * 100).toFixed(1)} %`,
        usPerCall(samples).toFixed(1),
        `${(((inNode.get(bucket) ?? 0) / samples) * 100).toFixed(0)} %`,
      ]),
    ),
  );
  console.log(
    `\n${busy} busy samples of 1 ms (warm-up and start-up included); ${cpuMsPerCall.toFixed(3)} ms CPU per call over the timed run (/proc). Profile: ${relative(REPO, kept)}\n`,
  );
  console.log(
    JSON.stringify({
      bench: 'profile',
      path: path.name,
      cpu_ms_per_call: round(cpuMsPerCall),
      rps: round(rps),
      busy_samples: busy,
      us_per_call: Object.fromEntries(rows.map(([bucket, samples]) => [bucket, round(usPerCall(samples), 1)])),
    }),
  );
}
