/**
 * Turns relayed calls into audit events, and makes sure no call is answered without a
 * durable record of it. Calls that act or read (`tools/call`, `resources/read`,
 * `prompts/get`) are audited, and so is every refusal. A call that goes upstream first
 * makes its intent durable (intentJournal.ts) while the upstream works, and its answer
 * then waits only for that; the outcome event follows in the spool's next group commit.
 * Other events (refusals, definition notices) are durable before their answer. If neither
 * can be written, the caller withholds the result: a call that cannot be audited does not
 * complete.
 */
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { createAuditEventId, type AuditDecision, type AuditEvent, type AuditResultStatus } from '../../common/audit/auditEvent';
import { describeError, type Logger } from '../../common/log/logger';
import { AUDITED_METHODS } from '../../common/policy/callSubject';
import type { AuditSpool } from './auditSpool';
import type { IntentJournal } from './intentJournal';

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

/** A call's audit intent: its event as it stands before the call goes upstream, and whether that is durable. */
export interface AuditIntent {
  /** Status `unknown`; the outcome event is this with the outcome's status, redactions, flags and latency. */
  event: AuditEvent;
  durable: Promise<boolean>;
}

export class CallAuditor {
  constructor(
    private readonly spool: AuditSpool,
    /** The signed-in user's sub, or `local` in unmanaged mode. */
    private readonly user: () => string,
    private readonly log: Logger,
    /** Called with each event once it is durable (the shipper's wake-up, the Audit view's stream); never throws back into the call. */
    private readonly appended: (event: AuditEvent) => void = () => undefined,
    /** Without a journal, every event is durable before its answer. */
    private readonly journal?: IntentJournal,
  ) {}

  /** Whether this request is audited when it is relayed (refusals always are). */
  audits(method: string): boolean {
    return AUDITED_METHODS.has(method);
  }

  /**
   * Before an audited call goes upstream: starts making its `unknown` event durable (what
   * the trail says of it if the gateway dies before the outcome is written). Undefined
   * without a journal: the outcome is then durable before the answer.
   */
  intend(outcome: CallOutcome): AuditIntent | undefined {
    if (!this.journal) return undefined;
    const event = this.event({ ...outcome, status: 'unknown' });
    if (this.spool.failed) return { event, durable: Promise.resolve(false) };
    const durable = this.journal.write(event).then(
      () => true,
      (error: unknown) => this.failed(outcome, error),
    );
    return { event, durable };
  }

  /**
   * Records a call's outcome. With a durable intent: resolves at once, and the outcome event
   * (same id) follows in the spool's next commit. Otherwise (no intent, or its write failed):
   * appends the event and resolves once it is durable. False when nothing durable could be
   * written (the caller withholds the result).
   */
  async record(outcome: CallOutcome, intent?: AuditIntent): Promise<boolean> {
    if (intent && (await intent.durable)) {
      const event = outcomeOf(intent, outcome);
      this.spool.append(event).then(
        () => {
          this.journal!.settle(event.id);
          this.told(event);
        },
        (error: unknown) =>
          // The intent stays open: the next start records the call as `unknown`.
          this.log.error('outcome audit event could not be written; the call is recorded by its intent', {
            server: outcome.serverId,
            method: outcome.request.method,
            error: describeError(error),
          }),
      );
      return true;
    }
    let event: AuditEvent;
    try {
      event = intent ? outcomeOf(intent, outcome) : this.event(outcome);
      await this.spool.append(event);
    } catch (error) {
      return this.failed(outcome, error);
    }
    if (intent) this.journal!.settle(event.id);
    this.told(event);
    return true;
  }

  private event(outcome: CallOutcome): AuditEvent {
    const params = (outcome.request.params ?? {}) as Record<string, unknown>;
    const subject = outcome.subject ?? (outcome.request.method === 'resources/read' ? params.uri : params.name);
    const args = outcome.request.method === 'resources/read' ? undefined : params.arguments;
    return {
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
      latencyMs: latencySince(outcome.startedAt),
    };
  }

  private failed(outcome: CallOutcome, error: unknown): false {
    this.log.error('audit event could not be written; withholding the result', {
      server: outcome.serverId,
      method: outcome.request.method,
      error: describeError(error),
    });
    return false;
  }

  /** The durable event, to whoever listens (shipper, Audit view). */
  private told(event: AuditEvent): void {
    try {
      this.appended(event);
    } catch (error) {
      this.log.warn('audit append hook failed', { error: describeError(error) });
    }
  }
}

/** The outcome event of a call with an intent: the intent's event with what the call ended with. */
function outcomeOf(intent: AuditIntent, outcome: CallOutcome): AuditEvent {
  return {
    ...intent.event,
    status: outcome.status,
    redactions: outcome.redactions ?? {},
    flags: outcome.flags ?? [],
    latencyMs: latencySince(outcome.startedAt),
  };
}

function latencySince(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 1000) / 1000;
}
