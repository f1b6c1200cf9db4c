/**
 * The control channel between the extension and the gateway it spawns (DESIGN.md runtime
 * picture): JSON-RPC 2.0 with LSP-style Content-Length framing (vscode-jsonrpc) on the
 * gateway's stdin and stdout, as a language server would talk. The gateway runs it when
 * started with `--control stdio`; its stdout then carries nothing else (logs stay on stderr).
 *
 * Order: the extension sends `gatehouse/start` with the launch secret (when it chose
 * `--launch-secret-stdin`), the gateway answers, starts, and sends `gatehouse/ready`.
 * Then, as they happen: `gatehouse/confirm` (the developer confirms a call),
 * `gatehouse/tools` (a server's tools as a client listed them, for the sidebar) and
 * `gatehouse/audit` (each audit event once it is durable, for the Audit view); the
 * extension may ask `gatehouse/auditHistory` for the recent trail at any time. The
 * extension closing the channel (its end of stdin) stops the gateway.
 */
import { NotificationType, RequestType } from 'vscode-jsonrpc';
import type { AuditEvent } from '../audit/auditEvent';
import type { GatewayReadyLine } from '../gatewayReady';

/** extension -> gateway: the per-launch secret clients must present. Answered once it is in use. */
export interface StartParams {
  launchSecret: string;
}
export const StartRequest = new RequestType<StartParams, Record<string, never>, void>('gatehouse/start');

/** gateway -> extension: the same facts as the headless ready line; sent again after each policy update. */
export const ReadyNotification = new NotificationType<GatewayReadyLine>('gatehouse/ready');

/**
 * gateway -> extension: a call the policy marks `confirm` (no reviewer group), for the
 * developer to approve or deny in the Confirm prompt. The gateway cancels the request
 * ($/cancelRequest) when the policy's timeout passes or the MCP client cancels the call;
 * anything but `approve` denies the call.
 */
export interface ConfirmParams {
  server: string;
  method: string;
  /** A tool name, `resource:<uri>` or `prompt:<name>`. */
  subject: string;
  /** The call's arguments, secrets already redacted. */
  arguments: Record<string, unknown>;
  rule: string;
  /** The policy's words: which rule asks and why. */
  message: string;
  /** How long the gateway waits before it denies the call. */
  timeoutMs: number;
  /** For a tool call: the risk the gateway believes it has (policy, trusted annotations, else destructive). */
  risk?: 'read' | 'write' | 'destructive';
}
export interface ConfirmResult {
  decision: 'approve' | 'deny';
}
export const ConfirmRequest = new RequestType<ConfirmParams, ConfirmResult, void>('gatehouse/confirm');

/** How the developer's sidebar shows one tool of a server. */
export interface ToolSummary {
  name: string;
  title?: string;
  /** What the gateway believes (policy risk, trusted annotations, else destructive). */
  risk: 'read' | 'write' | 'destructive';
  /** Whether calls wait for confirmation: always, only when a confirm rule's condition holds, or not. */
  policy: 'allow' | 'confirm' | 'confirm-sometimes';
  /** Its definition changed since approval: hidden from clients until approved again. */
  changed: boolean;
  /** Poisoning flags raised on its definition, e.g. `injection:model-instruction`. */
  flags: string[];
}

/** gateway -> extension: a server's tools as last listed by a client, for the sidebar. */
export interface ToolsParams {
  server: string;
  tools: ToolSummary[];
}
export const ToolsNotification = new NotificationType<ToolsParams>('gatehouse/tools');

/** gateway -> extension: an audit event, sent once it is durable in the local spool. */
export interface AuditParams {
  event: AuditEvent;
}
export const AuditNotification = new NotificationType<AuditParams>('gatehouse/audit');

/** The most events one `gatehouse/auditHistory` answer carries (what the Audit view keeps). */
export const MAX_AUDIT_HISTORY = 100_000;

/** extension -> gateway: the newest `limit` events of the local spool, oldest first. */
export interface AuditHistoryParams {
  limit: number;
}
export interface AuditHistoryResult {
  events: AuditEvent[];
}
export const AuditHistoryRequest = new RequestType<AuditHistoryParams, AuditHistoryResult, void>('gatehouse/auditHistory');

/**
 * gateway -> extension: the signed-in user's IdP access token for the policy server (with
 * `--policy-token control`), asked for each time the gateway needs it; the token never
 * touches argv, env or a file. The extension answers from VS Code's sign-in (refreshing it
 * as needed) and answers an error when nobody is signed in.
 */
export interface TokenParams {
  /** The policy server refused the last token (401): renew it, or have the developer sign in again. */
  refused?: boolean;
}
export interface TokenResult {
  token: string;
}
export const TokenRequest = new RequestType<TokenParams, TokenResult, void>('gatehouse/token');

/**
 * gateway -> extension: an admin revoked this user's access (or this session). The gateway
 * has ended every session; the extension deletes the sign-in it holds (SecretStorage), so
 * no token of a revoked user stays on the machine, and tells the developer.
 */
export interface RevokedParams {
  message: string;
}
export const RevokedNotification = new NotificationType<RevokedParams>('gatehouse/revoked');

/**
 * gateway -> extension: a `user-oauth` server needs the developer to sign in at its
 * authorization server. The gateway already checked `url` (https or loopback, the server's
 * own authorization endpoint); the extension asks in words ("<title> needs you to sign in
 * at <issuer host>") and opens it with `vscode.env.openExternal` only if the developer
 * agrees. Answered once the browser was sent there; an error answer means declined. The
 * gateway's loopback redirect takes the answer, so no code or token comes back this way.
 */
export interface AuthorizeParams {
  server: string;
  title: string;
  url: string;
  issuer: string;
  reason: 'sign-in' | 'expired' | 'step-up';
}
export const AuthorizeRequest = new RequestType<AuthorizeParams, Record<string, never>, void>('gatehouse/authorize');

/**
 * gateway -> extension: the developer's upstream OAuth credentials, kept in VS Code's
 * SecretStorage under `key` (one per user and server). `get` answers `{ value }` (a JSON
 * string, absent when none is kept); `set` and `delete` answer `{}`. The extension keeps
 * only keys that start with `upstream-oauth/`.
 */
export interface CredentialParams {
  op: 'get' | 'set' | 'delete';
  key: string;
  value?: string;
}
export interface CredentialResult {
  value?: string;
}
export const CredentialRequest = new RequestType<CredentialParams, CredentialResult, void>('gatehouse/credential');
export const CREDENTIAL_KEY_PREFIX = 'upstream-oauth/';

/** One `user-oauth` server's sign-in, as facts (never a token). */
export interface UpstreamSignInStatus {
  server: string;
  signedIn: boolean;
  /** The authorization server that issued the token. */
  issuer?: string;
  /** The scopes granted, as the authorization server said. */
  scopes?: string[];
  /** When the access token expires (ISO), if the authorization server said. */
  expiresAt?: string;
}
/** extension -> gateway: the sign-in facts of every `user-oauth` server (the Scopes view). */
export const SignInStatusRequest = new RequestType<Record<string, never>, { servers: UpstreamSignInStatus[] }, void>(
  'gatehouse/signInStatus',
);
/** extension -> gateway: the developer signs out of one server; its tokens and registration are deleted. */
export const SignOutServerRequest = new RequestType<{ server: string }, Record<string, never>, void>('gatehouse/signOutServer');
