/**
 * An MCP client transport over a child process's stdio, like the SDK's
 * StdioClientTransport, with what a gateway needs on top: the child gets only an explicit
 * environment allowlist (the SDK always adds its own defaults), it leads its own process
 * group so shutdown ends `npx`-style wrappers and their children too, and its stderr goes
 * to the gateway log line by line. Framing is the SDK's (ReadBuffer / serializeMessage).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { StdioTransportConfig } from '../config/gatewayConfig';
import { describeError, type Logger } from '../../common/log/logger';

/** Grace period between SIGTERM and SIGKILL for the upstream's process group. */
const KILL_GRACE_MS = 2_000;

export class UpstreamExitError extends Error {
  constructor(
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    spawnError?: string,
  ) {
    super(spawnError ? `could not start: ${spawnError}` : signal ? `process ended by ${signal}` : `process exited with code ${code}`);
    this.name = 'UpstreamExitError';
  }
}

export class StdioUpstreamTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private child: ChildProcess | undefined;
  private readonly readBuffer = new ReadBuffer();
  private exitInfo: UpstreamExitError | undefined;
  private closed = false;

  constructor(
    private readonly config: StdioTransportConfig,
    private readonly log: Logger,
    private readonly sourceEnv: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Why the process ended, once it has. */
  get exit(): UpstreamExitError | undefined {
    return this.exitInfo;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    if (this.child) throw new Error('StdioUpstreamTransport already started');
    return new Promise((resolveStart, rejectStart) => {
      const child = spawn(this.config.command, this.config.args, {
        env: this.childEnvironment(),
        cwd: this.config.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
        detached: true, // own process group, so close() can end the whole tree
        windowsHide: true,
      });
      this.child = child;
      child.once('spawn', () => resolveStart());
      child.once('error', (error) => {
        // Spawn failures (ENOENT, EACCES) arrive here before 'spawn', and no 'exit' follows.
        if (child.pid === undefined) {
          this.exitInfo = new UpstreamExitError(null, null, error.message);
          this.finish();
        }
        rejectStart(error);
        this.onerror?.(error);
      });
      child.once('exit', (code, signal) => {
        this.exitInfo = new UpstreamExitError(code, signal);
        this.finish();
      });
      child.stdout!.on('data', (chunk: Buffer) => this.onStdout(chunk));
      child.stdout!.on('error', (error) => this.onerror?.(error));
      child.stdin!.on('error', (error) => this.onerror?.(error));
      createInterface({ input: child.stderr! }).on('line', (line) => {
        this.log.info('upstream stderr', { stderr: line.length > 2000 ? `${line.slice(0, 2000)}…` : line });
      });
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || this.closed || !stdin.writable) {
      return Promise.reject(this.exitInfo ?? new Error('upstream process is not running'));
    }
    // Resolve at once; back-pressure is left to the pipe. Waiting for the write callback
    // on every message costs a tick per call for no benefit to callers.
    stdin.write(serializeMessage(message));
    return Promise.resolve();
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child || this.exitInfo) {
      this.finish();
      return;
    }
    child.stdin?.end();
    signalGroup(child, 'SIGTERM');
    const killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), KILL_GRACE_MS);
    killTimer.unref();
    await new Promise<void>((done) => {
      if (this.exitInfo) return done();
      child.once('exit', () => done());
    });
    clearTimeout(killTimer);
    // The leader is gone; make sure no member of its group outlives it.
    signalGroup(child, 'SIGKILL');
  }

  private onStdout(chunk: Buffer): void {
    try {
      this.readBuffer.append(chunk);
    } catch (error) {
      this.onerror?.(error as Error);
      void this.close();
      return;
    }
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.readBuffer.readMessage();
      } catch (error) {
        // A non-JSON-RPC line on stdout (e.g. a stray console.log) is logged and skipped.
        this.log.warn('upstream wrote a line that is not JSON-RPC', { error: describeError(error).slice(0, 200) });
        continue;
      }
      if (message === null) return;
      this.onmessage?.(message);
    }
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.readBuffer.clear();
    this.onclose?.();
  }

  private childEnvironment(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const name of this.config.envAllowlist) {
      const value = this.sourceEnv[name];
      // Shell function exports ("() { ...") are never passed on.
      if (value !== undefined && !value.startsWith('()')) env[name] = value;
    }
    return { ...env, ...this.config.env };
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}
