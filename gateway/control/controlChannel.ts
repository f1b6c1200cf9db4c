/**
 * The gateway's end of the control channel (common/control/controlProtocol.ts) on its own
 * stdin and stdout. Everything the extension answers is checked here: a malformed answer
 * to a confirmation denies the call.
 */
import type { Readable, Writable } from 'node:stream';
import {
  CancellationTokenSource,
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import { z } from 'zod';
import type { AuditEvent } from '../../common/audit/auditEvent';
import {
  AuditHistoryRequest,
  AuditNotification,
  AuthorizeRequest,
  ConfirmRequest,
  CredentialRequest,
  SignInStatusRequest,
  SignOutServerRequest,
  type UpstreamSignInStatus,
  MAX_AUDIT_HISTORY,
  ReadyNotification,
  RevokedNotification,
  StartRequest,
  TokenRequest,
  ToolsNotification,
  type ToolSummary,
} from '../../common/control/controlProtocol';
import type { GatewayReadyLine } from '../../common/gatewayReady';
import { describeError, type Logger } from '../../common/log/logger';
import { ServerIdSchema } from '../../common/serverTransport';
import { LaunchSecret } from '../http/launchSecret';
import type { ConfirmationAnswer, ConfirmationRequest, Confirmer } from '../confirmation/callConfirmations';
import type { AuthorizationRequest } from '../upstreamAuth/authorizationOpener';
import type { StoredUpstreamCredentials, UpstreamCredentialStore } from '../upstreamAuth/credentialStore';

const START_TIMEOUT_MS = 30_000;
const ConfirmAnswer = z.object({ decision: z.enum(['approve', 'deny']) });
const TokenAnswer = z.object({
  token: z
    .string()
    .min(1)
    .max(64 * 1024),
});
const StartParamsSchema = z.strictObject({ launchSecret: z.string().max(4096) });
const SignOutParamsSchema = z.strictObject({ server: ServerIdSchema });
const CredentialAnswer = z.object({
  value: z
    .string()
    .max(256 * 1024)
    .optional(),
});
const AuditHistoryParamsSchema = z.strictObject({ limit: z.number().int().min(0).max(MAX_AUDIT_HISTORY) });

export class ControlChannel implements Confirmer {
  private readonly connection: MessageConnection;
  private open = true;
  private readonly started: Promise<LaunchSecret>;

  constructor(
    input: Readable,
    output: Writable,
    private readonly user: () => string,
    private readonly log: Logger,
  ) {
    this.connection = createMessageConnection(new StreamMessageReader(input), new StreamMessageWriter(output));
    let deliver: (secret: LaunchSecret) => void = () => undefined;
    this.started = new Promise((resolve) => {
      deliver = resolve;
    });
    this.connection.onRequest(StartRequest, (params) => {
      const parsed = StartParamsSchema.safeParse(params);
      if (!parsed.success) throw new Error('gatehouse/start needs { launchSecret }');
      deliver(new LaunchSecret(parsed.data.launchSecret)); // throws (an error answer) for a weak secret
      return {};
    });
    this.connection.onClose(() => {
      this.open = false;
    });
    this.connection.onError(([error]) => log.warn('control channel error', { error: describeError(error) }));
    this.connection.listen();
  }

  get isOpen(): boolean {
    return this.open;
  }

  onClose(listener: () => void): void {
    this.connection.onClose(listener);
  }

  /** The launch secret the extension sends in `gatehouse/start`. */
  launchSecret(): Promise<LaunchSecret> {
    return Promise.race([
      this.started,
      new Promise<LaunchSecret>((_resolve, reject) =>
        setTimeout(() => reject(new Error('no gatehouse/start from the extension within 30 s')), START_TIMEOUT_MS).unref(),
      ),
    ]);
  }

  ready(line: GatewayReadyLine): void {
    void this.connection.sendNotification(ReadyNotification, line);
  }

  /** A server's tools as a client just listed them, for the sidebar. */
  toolsListed(server: string, tools: ToolSummary[]): void {
    if (this.open) void this.connection.sendNotification(ToolsNotification, { server, tools });
  }

  /** The user's IdP token from the extension's sign-in; throws when nobody is signed in or the extension is gone. */
  async userToken(options: { refused?: boolean } = {}): Promise<string> {
    if (!this.open) throw new Error('the Gatehouse extension is gone, so there is no sign-in to use');
    let answer: unknown;
    try {
      answer = await this.connection.sendRequest(TokenRequest, options.refused ? { refused: true } : {});
    } catch (error) {
      throw new Error(`no sign-in: ${describeError(error)}`, { cause: error });
    }
    const parsed = TokenAnswer.safeParse(answer);
    if (!parsed.success) throw new Error('the extension answered gatehouse/token without a token');
    return parsed.data.token;
  }

  /** Access was revoked: the extension deletes the sign-in it holds. */
  revoked(message: string): void {
    if (this.open) void this.connection.sendNotification(RevokedNotification, { message });
  }

  /** An audit event that just became durable, for the Audit view's live stream. */
  auditAppended(event: AuditEvent): void {
    if (this.open) void this.connection.sendNotification(AuditNotification, { event });
  }

  /** Answers `gatehouse/auditHistory` from the local spool. */
  serveAuditHistory(recent: (limit: number) => Promise<AuditEvent[]>): void {
    this.connection.onRequest(AuditHistoryRequest, async (params) => {
      const parsed = AuditHistoryParamsSchema.safeParse(params);
      if (!parsed.success) throw new Error(`gatehouse/auditHistory needs { limit } from 0 to ${MAX_AUDIT_HISTORY}`);
      return { events: await recent(parsed.data.limit) };
    });
  }

  /** Asks the developer through the extension's Confirm prompt; the signal cancels the prompt. */
  async confirm(request: ConfirmationRequest, signal: AbortSignal): Promise<ConfirmationAnswer> {
    if (!this.open)
      return {
        outcome: 'denied',
        message: `${request.message} The Gatehouse extension is gone, so nobody can confirm it; the call is denied.`,
      };
    const cancellation = new CancellationTokenSource();
    const cancel = () => cancellation.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    try {
      const answer = ConfirmAnswer.safeParse(
        await this.connection.sendRequest(
          ConfirmRequest,
          {
            server: request.serverId,
            method: request.method,
            subject: request.subject,
            arguments: request.arguments,
            rule: request.ruleId,
            message: request.message,
            timeoutMs: request.timeoutMs,
            ...(request.risk ? { risk: request.risk } : {}),
          },
          cancellation.token,
        ),
      );
      if (!answer.success) {
        this.log.warn('the extension answered a confirmation with something else than approve or deny; denying');
        return { outcome: 'denied', message: `${request.message} The confirmation prompt gave no clear answer, so the call is denied.` };
      }
      return answer.data.decision === 'approve'
        ? { outcome: 'approved', reviewer: this.user(), message: 'Approved by you.' }
        : { outcome: 'denied', reviewer: this.user(), message: `${request.message} You denied it.` };
    } finally {
      signal.removeEventListener('abort', cancel);
      cancellation.dispose();
    }
  }

  /** Asks the developer to sign in to an upstream (the extension opens the checked URL if they agree). */
  async authorize(request: AuthorizationRequest): Promise<void> {
    if (!this.open) throw new Error(`${request.serverTitle} needs you to sign in, but the Gatehouse extension is gone`);
    try {
      await this.connection.sendRequest(AuthorizeRequest, {
        server: request.serverId,
        title: request.serverTitle,
        url: request.url.href,
        issuer: request.issuer,
        reason: request.reason,
      });
    } catch (error) {
      throw new Error(`signing in to ${request.serverTitle} was not started: ${describeError(error)}`, { cause: error });
    }
  }

  /** Answers the Scopes view's questions about upstream sign-ins, and signs out of one server. */
  serveSignIns(signIns: { status(): Promise<UpstreamSignInStatus[]>; signOut(serverId: string): Promise<void> }): void {
    this.connection.onRequest(SignInStatusRequest, async () => ({ servers: await signIns.status() }));
    this.connection.onRequest(SignOutServerRequest, async (params) => {
      const parsed = SignOutParamsSchema.safeParse(params);
      if (!parsed.success) throw new Error('gatehouse/signOutServer needs { server }');
      await signIns.signOut(parsed.data.server);
      return {};
    });
  }

  /** The developer's upstream credentials in the extension's SecretStorage. */
  credentialStore(): UpstreamCredentialStore {
    const call = async (params: { op: 'get' | 'set' | 'delete'; key: string; value?: string }): Promise<unknown> => {
      if (!this.open) throw new Error('the Gatehouse extension is gone, so no credential can be kept');
      return this.connection.sendRequest(CredentialRequest, params);
    };
    return {
      get: async (key) => {
        const answer = CredentialAnswer.safeParse(await call({ op: 'get', key }));
        if (!answer.success || answer.data.value === undefined) return undefined;
        try {
          return JSON.parse(answer.data.value) as StoredUpstreamCredentials;
        } catch {
          return undefined; // unreadable: as if nothing were kept, the user signs in again
        }
      },
      set: async (key, value) => {
        await call({ op: 'set', key, value: JSON.stringify(value) });
      },
      delete: async (key) => {
        await call({ op: 'delete', key });
      },
    };
  }

  dispose(): void {
    this.connection.dispose();
  }
}
