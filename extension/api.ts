/**
 * What `activate()` returns to other extensions and to the real-VS-Code test suite: facts
 * about the running gateway, never its launch secret.
 */
import type { GatewayReadyLine } from '../common/gatewayReady';
import type { ReviewRecord } from '../common/policy/policyServerApi';
import type { ToolSummary } from '../common/control/controlProtocol';

export interface GatehouseApi {
  /** Resolves with the gateway's ready line once it runs (again, after a restart). */
  gatewayReady(): Promise<GatewayReadyLine>;
  /** How long `activate()` took (it starts the gateway but waits for nothing). */
  readonly activationMs: number;
  /** A server's tools as the sidebar shows them (once VS Code listed them through the gateway). */
  toolsOf(serverId: string): readonly ToolSummary[] | undefined;
  /** Reviews shown in "Pending reviews" (as last fetched). */
  pendingReviews(): readonly ReviewRecord[];
  /** Where the gateway keeps lasting state (tool pins, the audit spool). */
  readonly stateDir: string;
}
