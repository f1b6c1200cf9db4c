/**
 * Turns relayed calls into audit events and makes each durable before its answer leaves
 * the gateway. Calls that act or read (`tools/call`, `resources/read`, `prompts/get`) are
 * audited, and so is every refusal. If the spool cannot take an event, the caller withholds
 * the result: a call that cannot be audited does not complete.
 */
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { createAuditEventId, type AuditDecision, type AuditEvent, type AuditResultStatus } from '../../common/audit/auditEvent';
import { describeError, type Logger } from '../../common/log/logger';
import { AUDITED_METHODS } from '../../common/policy/callSubject';
import type { AuditSpool } from './auditSpool';

export interface CallOutcome {
  serverId: string;
  client: { name: string; version: string };
  request: JSONRPCRequest;
  /** What the event names as its tool when the request does not say (a tool seen in a `tools/list`). */
  subject?: string;
  startedAt: number;
  receivedAt: string;
  decision: AuditDecision;
  rule?: string;
  /** Who answered a confirmation (a `sub`). */
  reviewer?: string;
  status: AuditResultStatus;
  redactions?: Record<string, number>;
  flags?: string[];
}

export class CallAuditor {
  constructor(
    private readonly spool: AuditSpool,
    /** The signed-in user's sub, or `local` in unmanaged mode. */
    private readonly user: () => string,
    private readonly log: Logger,
    /** Called with each event once it is durable (the shipper's wake-up, the Audit view's stream); never throws back into the call. */
    private readonly appended: (event: AuditEvent) => void = () => undefined,
  ) {}

  /** Whether this request is audited when it is relayed (refusals always are). */
  audits(method: string): boolean {
    return AUDITED_METHODS.has(method);
  }

  /** Appends the event durably; false when the spool failed (the caller withholds the result). */
  async record(outcome: CallOutcome): Promise<boolean> {
    const params = (outcome.request.params ?? {}) as Record<string, unknown>;
    const subject = outcome.subject ?? (outcome.request.method === 'resources/read' ? params.uri : params.name);
    const args = outcome.request.method === 'resources/read' ? undefined : params.arguments;
    let event: AuditEvent;
    try {
      event = {
        id: createAuditEventId(),
        time: outcome.receivedAt,
        user: this.user(),
        client: { name: outcome.client.name.slice(0, 1024), version: outcome.client.version.slice(0, 256) },
        server: outcome.serverId,
        method: outcome.request.method,
        ...(typeof subject === 'string' && subject.length > 0 ? { tool: subject.slice(0, 1024) } : {}),
        decision: outcome.decision,
        ...(outcome.rule ? { rule: outcome.rule } : {}),
        ...(outcome.reviewer ? { reviewer: outcome.reviewer.slice(0, 1024) } : {}),
        ...(args !== undefined ? { argsDigest: this.spool.digestArguments(args) } : {}),
        status: outcome.status,
        redactions: outcome.redactions ?? {},
        flags: outcome.flags ?? [],
        latencyMs: Math.round((performance.now() - outcome.startedAt) * 1000) / 1000,
      };
      await this.spool.append(event);
    } catch (error) {
      this.log.error('audit event could not be written; withholding the result', {
        server: outcome.serverId,
        method: outcome.request.method,
        error: describeError(error),
      });
      return false;
    }
    try {
      this.appended(event);
    } catch (error) {
      this.log.warn('audit append hook failed', { error: describeError(error) });
    }
    return true;
  }
}
