/**
 * The benchmarks' load runs: autocannon against an MCP session, every response body
 * checked (cheaply, and in full every FULL_CHECK_EVERY-th), latency recorded with
 * sub-millisecond precision.
 */
import { isToolResult, TOOL_CALL_BODY, TOOL_TEXT, type McpSession } from './benchMcpSession';
import { percentile } from './benchStats';
import { cpuMs } from './benchProcesses';

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
        body: (session.body ?? TOOL_CALL_BODY)('[<id>]'),
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
