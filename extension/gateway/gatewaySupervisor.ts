/**
 * Runs the gateway as a child process the way a language client runs its server: VS Code's
 * own runtime (`process.execPath` with ELECTRON_RUN_AS_NODE=1, so users install no Node),
 * its own process group (ended whole on dispose), the control channel on its stdio
 * (common/control/controlProtocol.ts), its stderr into the log. The launch secret is made
 * here and sent over the channel: never argv, env or a file. A gateway that dies is
 * restarted with backoff (1 s doubling to 30 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as vscode from 'vscode';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { generateLaunchSecret } from '../../common/control/launchSecretText';
import {
  AuditHistoryRequest,
  AuditNotification,
  AuthorizeRequest,
  ConfirmRequest,
  CredentialRequest,
  ReadyNotification,
  RevokedNotification,
  SignInStatusRequest,
  SignOutServerRequest,
  StartRequest,
  TokenRequest,
  ToolsNotification,
  type AuthorizeParams,
  type UpstreamSignInStatus,
  type ConfirmParams,
  type ConfirmResult,
  type CredentialParams,
  type CredentialResult,
  type ToolSummary,
} from '../../common/control/controlProtocol';
import type { GatewayReadyLine } from '../../common/gatewayReady';
import { Disposable } from '../lifecycle';
import { describeError } from '../../common/log/logger';

export type GatewayState =
  | { kind: 'not-configured'; reason: string }
  | { kind: 'signed-out'; reason: string }
  | { kind: 'starting' }
  | { kind: 'ready'; ready: GatewayReadyLine; secret: string }
  | { kind: 'failed'; reason: string; retryInMs: number };

/** The extension's side of per-user upstream OAuth (extension/auth/upstreamSignIn.ts). */
export interface UpstreamSignInHandlers {
  authorize(params: AuthorizeParams): Promise<Record<string, never>>;
  credential(params: CredentialParams): Promise<CredentialResult>;
}

export interface GatewayLaunch {
  /** `gatehouse gateway` arguments that choose the mode (config file, or policy server). */
  modeArgs: string[];
  stateDir: string;
  runtimeDir: string;
}

/**
 * VS Code's MCP client reaches HTTP servers on unix sockets (`unix:` URIs) since 1.105. A
 * 0600 socket in a 0700 folder is reachable by this user only, where loopback TCP is
 * reachable by every local process (which then still needs the launch secret).
 */
export function hostReachesUnixSockets(): boolean {
  if (process.platform === 'win32') return false;
  const [major = 0, minor = 0] = vscode.version.split('.').map(Number);
  return major > 1 || (major === 1 && minor >= 105);
}

const RESTART_MIN_MS = 1_000;
const RESTART_MAX_MS = 30_000;
const STOP_GRACE_MS = 3_000;

export class GatewaySupervisor extends Disposable {
  private readonly changed = this._register(new vscode.EventEmitter<GatewayState>());
  readonly onDidChange = this.changed.event;
  private readonly toolsChanged = this._register(new vscode.EventEmitter<string>());
  /** A server's tools were listed again (by VS Code's MCP client, through the gateway). */
  readonly onDidChangeTools = this.toolsChanged.event;
  private readonly audited = this._register(new vscode.EventEmitter<AuditEvent>());
  /** An audit event the gateway just made durable. */
  readonly onDidAudit = this.audited.event;
  private readonly revokedEmitter = this._register(new vscode.EventEmitter<string>());
  /** An admin revoked this user's access (the gateway has ended every session). */
  readonly onDidRevoke = this.revokedEmitter.event;
  private readonly tools = new Map<string, ToolSummary[]>();
  private current: GatewayState = { kind: 'starting' };
  private child: ChildProcess | undefined;
  private connection: MessageConnection | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    private readonly cliPath: string,
    private readonly launch: () => GatewayLaunch | { notConfigured: string } | { signedOut: string },
    private readonly confirm: (params: ConfirmParams, cancelled: vscode.CancellationToken) => Promise<ConfirmResult>,
    private readonly log: vscode.LogOutputChannel,
    /** The user's IdP token for `--policy-token control` gateways (from VS Code sign-in); `refused`: renew it. */
    private readonly userToken: (refused: boolean) => Promise<string> = () => Promise.reject(new Error('sign-in is not configured')),
    private readonly upstreamSignIn?: UpstreamSignInHandlers,
  ) {
    super();
  }

  get state(): GatewayState {
    return this.current;
  }

  /** The server's tools as last listed through this gateway; undefined until a client listed them. */
  toolsOf(serverId: string): readonly ToolSummary[] | undefined {
    return this.tools.get(serverId);
  }

  /** The newest events of the gateway's local audit spool, oldest first; empty while it is not ready. */
  async auditHistory(limit: number): Promise<AuditEvent[]> {
    if (this.current.kind !== 'ready' || !this.connection) return [];
    return (await this.connection.sendRequest(AuditHistoryRequest, { limit })).events;
  }

  /** The developer's sign-ins to `user-oauth` servers, as facts; empty while the gateway is not ready. */
  async signInStatus(): Promise<UpstreamSignInStatus[]> {
    if (this.current.kind !== 'ready' || !this.connection) return [];
    return (await this.connection.sendRequest(SignInStatusRequest, {})).servers;
  }

  /** Signs the developer out of one server: the gateway deletes its tokens (here and in SecretStorage). */
  async signOutServer(server: string): Promise<void> {
    if (!this.connection) throw new Error('the gateway is not running');
    await this.connection.sendRequest(SignOutServerRequest, { server });
  }

  /** Starts the gateway (or restarts it, e.g. after the settings changed). */
  restart(): void {
    this.failures = 0;
    this.stop();
    this.start();
  }

  /** Stops the gateway for good; events stop at once (the emitters are disposed first), and the gateway stops even if one of them throws. */
  override dispose(): void {
    try {
      super.dispose();
    } finally {
      this.stop();
    }
  }

  private start(): void {
    if (this.isDisposed) return;
    const launch = this.launch();
    if ('notConfigured' in launch) return this.set({ kind: 'not-configured', reason: launch.notConfigured });
    if ('signedOut' in launch) return this.set({ kind: 'signed-out', reason: launch.signedOut });
    this.set({ kind: 'starting' });
    this.tools.clear();
    const secret = generateLaunchSecret();
    const args = [
      this.cliPath,
      'gateway',
      ...launch.modeArgs,
      '--control',
      'stdio',
      '--launch-secret-stdin',
      '--listen',
      hostReachesUnixSockets() ? 'unix' : '127.0.0.1:0',
      '--state-dir',
      launch.stateDir,
      '--runtime-dir',
      launch.runtimeDir,
    ];
    const child = spawn(process.execPath, args, {
      detached: true, // its own process group: upstream servers end with it
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ELECTRON_RUN_AS_NODE: '1', PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    });
    this.child = child;
    createInterface({ input: child.stderr! }).on('line', (line) => this.logLine(line));
    const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    this.connection = connection;
    connection.onRequest(ConfirmRequest, async (params, token) => {
      const cancelled = new vscode.CancellationTokenSource();
      token.onCancellationRequested(() => cancelled.cancel());
      try {
        return await this.confirm(params, cancelled.token);
      } finally {
        cancelled.dispose();
      }
    });
    // The token goes over the channel only; an error answer (nobody signed in) makes the gateway fail closed.
    connection.onRequest(TokenRequest, async (params) => ({ token: await this.userToken(params?.refused === true) }));
    if (this.upstreamSignIn) {
      const handlers = this.upstreamSignIn;
      connection.onRequest(AuthorizeRequest, (params) => handlers.authorize(params));
      connection.onRequest(CredentialRequest, (params) => handlers.credential(params));
    }
    connection.onNotification(ToolsNotification, ({ server, tools }) => {
      this.tools.set(server, tools);
      this.toolsChanged.fire(server);
    });
    connection.onNotification(RevokedNotification, ({ message }) => {
      if (!this.isDisposed && typeof message === 'string') this.revokedEmitter.fire(message);
    });
    connection.onNotification(AuditNotification, ({ event }) => {
      if (!this.isDisposed) this.audited.fire(event);
    });
    connection.onNotification(ReadyNotification, (ready) => {
      this.failures = 0;
      this.log.info(`gateway ready: pid ${ready.pid}, ${ready.policy.mode} mode, ${ready.servers.length} server(s), ${ready.startupMs} ms`);
      this.set({ kind: 'ready', ready, secret });
    });
    connection.listen();
    connection.sendRequest(StartRequest, { launchSecret: secret }).catch((error: unknown) => {
      this.log.error(`gateway refused to start: ${describeError(error)}`);
    });
    child.once('error', (error) => this.log.error(`cannot start the gateway: ${error.message}`));
    child.once('exit', (code, signal) => {
      connection.dispose();
      if (this.child !== child) return; // stopped on purpose
      this.child = undefined;
      this.connection = undefined;
      this.failures++;
      const retryInMs = Math.min(RESTART_MIN_MS * 2 ** (this.failures - 1), RESTART_MAX_MS);
      const reason = `the gateway exited (${signal ?? `code ${code}`})`;
      this.log.warn(`${reason}; restarting in ${retryInMs} ms`);
      this.set({ kind: 'failed', reason, retryInMs });
      this.restartTimer = setTimeout(() => this.start(), retryInMs);
    });
  }

  private stop(): void {
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    this.connection?.dispose();
    this.connection = undefined;
    if (!child || child.exitCode !== null || child.pid === undefined) return;
    const group = -child.pid;
    try {
      process.kill(group, 'SIGTERM');
    } catch {
      return; // already gone
    }
    const killer = setTimeout(() => {
      try {
        process.kill(group, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, STOP_GRACE_MS);
    killer.unref();
    child.once('exit', () => clearTimeout(killer));
  }

  private set(state: GatewayState): void {
    this.current = state;
    if (!this.isDisposed) this.changed.fire(state);
  }

  /** The gateway logs JSON lines on stderr; they go to the log channel at their own level. */
  private logLine(line: string): void {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string; component?: string } & Record<string, unknown>;
      const { level, msg, time: _time, ...rest } = entry;
      const text = `${msg ?? ''} ${JSON.stringify(rest)}`;
      if (level === 'error') this.log.error(text);
      else if (level === 'warn') this.log.warn(text);
      else if (level === 'debug') this.log.debug(text);
      else this.log.info(text);
    } catch {
      this.log.info(line);
    }
  }
}
