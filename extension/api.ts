/**
 * What `activate()` returns to other extensions and to the real-VS-Code test suite: facts
 * about the running gateway, never its launch secret.
 */
import type { GatewayReadyLine } from '../common/gatewayReady';
import type { ReviewRecord } from '../common/policy/policyServerApi';
import type { ToolSummary } from '../common/control/controlProtocol';
import type { AuditEvent } from '../common/audit/auditEvent';
import type { ScopeRow } from '../webviews/scopes/scopesProtocol';
import type { AuditViewReport } from './audit/auditPanel';

export interface GatehouseApi {
  /** Resolves with the gateway's ready line once it runs (again, after a restart). */
  gatewayReady(): Promise<GatewayReadyLine>;
  /** How long `activate()` took (it starts the gateway but waits for nothing). */
  readonly activationMs: number;
  /** A server's tools as the sidebar shows them (once VS Code listed them through the gateway). */
  toolsOf(serverId: string): readonly ToolSummary[] | undefined;
  /** Reviews shown in "Pending reviews" (as last fetched). */
  pendingReviews(): readonly ReviewRecord[];
  /** Interactive sign-in with the configured provider (what the Sign In command does); rejects with why it failed. */
  signIn(): Promise<void>;
  /** Who is signed in (VS Code sign-in), as the account's label; undefined when nobody is or sign-in is not set up. */
  account(): string | undefined;
  /** Whether the developer enabled the server (only enabled servers are offered to VS Code's MCP client). */
  isEnabled(serverId: string): boolean;
  /** The audit trail the Audit view shows, oldest first. */
  auditEvents(): readonly AuditEvent[];
  /** What the open Audit view last rendered; undefined when it is closed or not yet rendered. */
  auditView(): AuditViewReport | undefined;
  /** The rows of the Scopes view (sign-in facts as of the last `refreshScopes`). */
  scopes(): ScopeRow[];
  /** Asks the gateway for the current sign-in facts of `user-oauth` servers, for `scopes()`. */
  refreshScopes(): Promise<void>;
  /** Where the gateway keeps lasting state (tool pins, the audit spool). */
  readonly stateDir: string;
}
