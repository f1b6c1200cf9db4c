/**
 * Shared plumbing for the benchmarks (`npm run bench`): child processes that are always
 * cleaned up (own process groups, plus every descendant found under /proc), per-process CPU
 * and memory from /proc, MCP session set-up over raw HTTP, and an autocannon-driven load
 * run that checks every response body and records latency with sub-millisecond precision.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';

// ---------------------------------------------------------------------------------------
// Processes

export interface Tracked {
  name: string;
  child: ChildProcess;
  /** Everything the process wrote to stderr (last 64 KiB), for error messages. */
  stderr(): string;
  /** Calls `listener` with every later stdout line. */
  onLine(listener: (line: string) => void): void;
  stop(): Promise<void>;
}

const tracked = new Set<Tracked>();
const OWN_PGID = readStat(process.pid)?.pgid;

interface ProcStat {
  ppid: number;
  pgid: number;
  ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may itself contain spaces or parentheses).
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(rest[1]), pgid: Number(rest[2]), ticks: Number(rest[11]) + Number(rest[12]) };
}

function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  if (!pgid || pgid === OWN_PGID) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * Spawns `command` in its own process group. stdout lines go to `onLine` listeners; stderr is
 * drained (a full pipe would stall the process under test) and kept for error messages.
 */
export function spawnTracked(
  name: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Tracked {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: options.env ?? { PATH: process.env.PATH, HOME: process.env.HOME },
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 65_536) stderr = stderr.slice(-65_536);
  });
  let pending = '';
  const listeners: Array<(line: string) => void> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      for (const listener of listeners) listener(line);
    }
    if (pending.length > 65_536) pending = pending.slice(-65_536);
  });
  child.on('error', () => undefined); // reported through exit / readiness timeouts
  const entry: Tracked = {
    name,
    child,
    stderr: () => stderr,
    onLine: (listener) => void listeners.push(listener),
    async stop() {
      tracked.delete(entry);
      const pid = child.pid;
      if (pid === undefined) return;
      // Upstreams may live in process groups of their own (the gateway detaches them).
      const family = descendants(pid);
      const groups = new Set<number>([pid, ...family.map((p) => readStat(p)?.pgid ?? 0)]);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        killGroup(pid, 'SIGTERM');
        await Promise.race([exited, sleep(5_000)]);
      }
      for (const group of groups) killGroup(group, 'SIGKILL');
      for (const p of family) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    },
  };
  tracked.add(entry);
  return entry;
}

/** Stops every process still tracked (used on failure and on signals). */
export async function stopAll(): Promise<void> {
  await Promise.all([...tracked].map((t) => t.stop().catch(() => undefined)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the first non-undefined `parse(line)` of the process's stdout. */
export function waitForLine<T>(proc: Tracked, parse: (line: string) => T | undefined, timeoutMs = 30_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (error: Error | undefined, value?: T) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(value as T);
    };
    const timer = setTimeout(() => finish(new Error(`${proc.name}: not ready in ${timeoutMs} ms; stderr:\n${proc.stderr()}`)), timeoutMs);
    proc.child.once('exit', (code, signal) =>
      finish(new Error(`${proc.name}: exited (${code ?? signal}) before it was ready; stderr:\n${proc.stderr()}`)),
    );
    proc.onLine((line) => {
      const value = parse(line);
      if (value !== undefined) finish(undefined, value);
    });
  });
}

let clockTicks: number | undefined;
/** utime + stime of a process so far, in ms. */
export function cpuMs(pid: number): number {
  clockTicks ??= (() => {
    try {
      return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      return 100;
    }
  })();
  const stat = readStat(pid);
  if (!stat) throw new Error(`cannot read /proc/${pid}/stat`);
  return (stat.ticks * 1000) / clockTicks;
}

export function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) / 1024;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------
// MCP over raw HTTP

export const TOOL_TEXT = 'This is a simple text response for testing.';
export const TOOL_CALL_BODY = (id: string | number) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'test_simple_text', arguments: {} } });

/** JSON-RPC messages in a response body, whether plain JSON or SSE `data:` lines. */
export function rpcMessages(body: string): Array<Record<string, unknown>> {
  const trimmed = body.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const parsed = JSON.parse(trimmed) as unknown;
    return (Array.isArray(parsed) ? parsed : [parsed]) as Array<Record<string, unknown>>;
  }
  const messages: Array<Record<string, unknown>> = [];
  for (const event of body.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
    if (data.trim()) messages.push(JSON.parse(data) as Record<string, unknown>);
  }
  return messages;
}

/** True when `body` carries the JSON-RPC result of test_simple_text (for `id`, if given). */
export function isToolResult(body: string, id?: string | number): boolean {
  try {
    return rpcMessages(body).some((m) => {
      const content = (m.result as { content?: Array<{ type?: string; text?: string }> } | undefined)?.content;
      return (id === undefined || m.id === id) && content?.[0]?.type === 'text' && content[0].text === TOOL_TEXT;
    });
  } catch {
    return false;
  }
}

export interface McpSession {
  url: string;
  /** Headers every request of the session carries (auth, session id, protocol version). */
  headers: Record<string, string>;
}

async function post(
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/**
 * initialize + notifications/initialized, then one checked tools/call. Retries while the
 * port refuses connections (a peer proxy that is still starting), up to `timeoutMs`.
 */
export async function openSession(
  url: string,
  extraHeaders: Record<string, string> = {},
  capabilities: Record<string, unknown> = {},
  options: { protocolVersion?: string; timeoutMs?: number } = {},
): Promise<McpSession> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const base = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...extraHeaders };
  const initialize = JSON.stringify({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: {
      protocolVersion: options.protocolVersion ?? LATEST_PROTOCOL_VERSION,
      capabilities,
      clientInfo: { name: 'gatehouse-bench', version: '1.0.0' },
    },
  });
  const deadline = Date.now() + timeoutMs;
  let init: Awaited<ReturnType<typeof post>>;
  for (;;) {
    try {
      init = await post(url, base, initialize);
      break;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`${url}: no answer to initialize within ${timeoutMs} ms: ${(error as Error).message}`, { cause: error });
      await sleep(100);
    }
  }
  const sessionId = init.headers.get('mcp-session-id');
  const result = rpcMessages(init.text).find((m) => m.id === 0)?.result as { protocolVersion?: string } | undefined;
  if (init.status !== 200 || !sessionId || !result?.protocolVersion) {
    throw new Error(`${url}: initialize failed (HTTP ${init.status}, session ${sessionId ?? 'none'}): ${init.text.slice(0, 500)}`);
  }
  const headers = { ...base, 'mcp-session-id': sessionId, 'mcp-protocol-version': result.protocolVersion };
  const initialized = await post(url, headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  if (initialized.status !== 202 && initialized.status !== 200) {
    throw new Error(`${url}: notifications/initialized got HTTP ${initialized.status}: ${initialized.text.slice(0, 500)}`);
  }
  const probe = await post(url, headers, TOOL_CALL_BODY('probe'));
  if (probe.status !== 200 || !isToolResult(probe.text, 'probe')) {
    throw new Error(`${url}: probe tools/call failed (HTTP ${probe.status}): ${probe.text.slice(0, 500)}`);
  }
  return { url, headers };
}

// ---------------------------------------------------------------------------------------
// Load

interface AutocannonResult {
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
}
interface AutocannonTracker {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, responseTimeMs: number) => void): void;
  on(event: 'reqMismatch', listener: (body: string) => void): void;
  on(event: 'reqError', listener: (error: Error) => void): void;
}
type Autocannon = (options: Record<string, unknown>, done: (error: Error | null, result: AutocannonResult) => void) => AutocannonTracker;
// autocannon ships no types; this is the slice of its API used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const autocannon = require('autocannon') as Autocannon;

export interface LoadResult {
  connections: number;
  calls: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  /** CPU ms per completed call of the process measured (if a pid was given). */
  cpuMsPerCall?: number;
  /** CPU ms per completed call of this process (the load generator), to spot when it is the limit. */
  loadgenCpuMsPerCall: number;
}

/** Every response is checked cheaply; every FULL_CHECK_EVERY-th is parsed in full. */
const FULL_CHECK_EVERY = 50;

function once(session: McpSession, connections: number, seconds: number): Promise<{ calls: number; latencies: number[]; seconds: number }> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    let checked = 0;
    let firstMismatch: string | undefined;
    let firstError: string | undefined;
    const started = performance.now();
    const tracker = autocannon(
      {
        url: session.url,
        method: 'POST',
        headers: session.headers,
        // Unique JSON-RPC id per request: transports route responses by id within a session.
        body: TOOL_CALL_BODY('[<id>]'),
        idReplacement: true,
        connections,
        duration: seconds,
        timeout: 10,
        // Autocannon counts a response when the HTTP message is complete, i.e. the whole
        // SSE body (which ends after the JSON-RPC result) has arrived.
        verifyBody: (body: string) =>
          ++checked % FULL_CHECK_EVERY === 0 ? isToolResult(body) : body.includes(TOOL_TEXT) && body.includes('"result"'),
      },
      (error, result) => {
        const elapsed = (performance.now() - started) / 1000;
        if (error) return reject(error);
        const problems = result.errors + result.timeouts + result.non2xx + result.mismatches;
        if (problems > 0 || latencies.length === 0) {
          return reject(
            new Error(
              `load on ${session.url} (c=${connections}): ${latencies.length} ok, ${result.errors} errors, ${result.timeouts} timeouts, ` +
                `${result.non2xx} non-2xx, ${result.mismatches} bad bodies${firstError ? `; first error: ${firstError}` : ''}${firstMismatch ? `; first bad body: ${firstMismatch.slice(0, 400)}` : ''}`,
            ),
          );
        }
        resolve({ calls: latencies.length, latencies, seconds: elapsed });
      },
    );
    tracker.on('response', (_client, status, _bytes, responseTimeMs) => {
      if (status >= 200 && status < 300) latencies.push(responseTimeMs);
    });
    tracker.on('reqMismatch', (body) => {
      firstMismatch ??= body;
    });
    tracker.on('reqError', (error) => {
      firstError ??= error.message;
    });
  });
}

export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/**
 * Warm-up, then a timed run at a fixed number of in-flight requests (one per connection).
 * With `cpuPid`, that process's utime+stime over the timed run is divided by completed calls.
 */
export async function measure(
  session: McpSession,
  connections: number,
  options: { warmupS: number; seconds: number; cpuPid?: number },
): Promise<LoadResult> {
  if (options.warmupS > 0) await once(session, connections, options.warmupS);
  const cpuBefore = options.cpuPid !== undefined ? cpuMs(options.cpuPid) : 0;
  const ownBefore = process.cpuUsage();
  const run = await once(session, connections, options.seconds);
  const own = process.cpuUsage(ownBefore);
  const cpuAfter = options.cpuPid !== undefined ? cpuMs(options.cpuPid) : 0;
  const sorted = Float64Array.from(run.latencies).sort();
  return {
    connections,
    calls: run.calls,
    seconds: run.seconds,
    rps: run.calls / run.seconds,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    ...(options.cpuPid !== undefined ? { cpuMsPerCall: (cpuAfter - cpuBefore) / run.calls } : {}),
    loadgenCpuMsPerCall: (own.user + own.system) / 1000 / run.calls,
  };
}

// ---------------------------------------------------------------------------------------
// Output

export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function markdownTable(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(cells[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}
