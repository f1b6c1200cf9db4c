/**
 * Child processes for the benchmarks (`npm run bench`) that are always cleaned up (own
 * process groups, plus every descendant found under /proc), their stdout lines, and their
 * CPU and memory read from /proc.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

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
