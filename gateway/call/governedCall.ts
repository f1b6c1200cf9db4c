/**
 * `gateway/call/` owns one client request on its way through the gateway: `GovernedCall`
 * is the request and everything decided about it (decision, rule, reviewer, flags,
 * redactions), carried through the stages of `CallPipeline` and finished by exactly one
 * `complete(end)`, which writes the audit event and answers the client. Because every
 * path ends there, no exit can answer without auditing, or audit without answering.
 */
import { ErrorCode, type JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { AuditDecision, AuditResultStatus } from '../../common/audit/auditEvent';
import type { AuditIntent, CallAuditor, CallOutcome } from '../audit/callAuditor';

/** What the client is told: a result, a JSON-RPC error, or nothing (it cancelled the call). */
export type ClientAnswer = { result: Record<string, unknown> } | { error: { code: number; message: string; data?: unknown } } | undefined;

/** How a call ends: the status its audit event records and the answer the client gets. */
export interface CallEnd {
  status: AuditResultStatus;
  answer: ClientAnswer;
  /** The answer is the upstream's (a result or its error): the call may have acted, so it is withheld unless audited. */
  fromUpstream?: boolean;
}

export interface CallFinish {
  auditor: CallAuditor;
  /** Sends the answer to the client on the request's own stream. */
  respond: (request: JSONRPCRequest, answer: NonNullable<ClientAnswer>) => Promise<void>;
}

export class GovernedCall {
  readonly startedAt = performance.now();
  readonly receivedAt = new Date().toISOString();
  decision: AuditDecision = 'allow';
  rule: string | undefined;
  /** Who answered a confirmation (a `sub`). */
  reviewer: string | undefined;
  readonly flags: string[] = [];
  redactions: Record<string, number> = {};
  /**
   * Whether `complete` writes an audit event: calls that act or read, confirmed calls, and
   * every refusal. List calls that pass are not audited (their results are filtered).
   */
  audited: boolean;
  /** Made just before the call goes upstream, so its audit is durable while the upstream works. */
  private intent: AuditIntent | undefined;
  private completed = false;

  constructor(
    readonly serverId: string,
    readonly client: { name: string; version: string },
    /** What is forwarded upstream: the client's request, plus a review proof for the relay once approved. */
    public request: JSONRPCRequest,
    audited: boolean,
    private readonly finish: CallFinish,
  ) {
    this.audited = audited;
  }

  /** Ends the call as refused: audited whatever the method, answered with `message`. */
  refuse(decision: AuditDecision, message: string, code: number, answer = true): CallEnd {
    this.decision = decision;
    this.audited = true;
    return { status: 'denied', answer: answer ? { error: { code, message } } : undefined };
  }

  /** The call is about to go upstream: an audited call's intent starts to be made durable meanwhile. */
  intend(): void {
    if (this.audited && !this.intent) this.intent = this.finish.auditor.intend(this.outcome('unknown'));
  }

  /** The audit record of this call as it stands. */
  outcome(status: AuditResultStatus): CallOutcome {
    return {
      serverId: this.serverId,
      client: this.client,
      request: this.request,
      startedAt: this.startedAt,
      receivedAt: this.receivedAt,
      decision: this.decision,
      ...(this.rule !== undefined ? { rule: this.rule } : {}),
      ...(this.reviewer !== undefined ? { reviewer: this.reviewer } : {}),
      status,
      redactions: this.redactions,
      flags: this.flags,
    };
  }

  /**
   * The one exit: a durable record of the call (its event, or for a call that went upstream
   * its intent) exists before the client sees anything, and an upstream's answer that could
   * not be recorded is withheld (a call that cannot be audited does not complete). The
   * gateway's own refusals and errors are answered even then: they carry nothing from the
   * upstream.
   */
  async complete(end: CallEnd): Promise<void> {
    if (this.completed) throw new Error('a call completes once');
    this.completed = true;
    let answer = end.answer;
    if (
      this.audited &&
      !(await this.finish.auditor.record(this.outcome(end.status), this.intent)) &&
      answer !== undefined &&
      end.fromUpstream
    ) {
      answer = {
        error: {
          code: ErrorCode.InternalError,
          message: 'Gatehouse could not write the audit record for this call, so its result is withheld. Check the gateway log.',
        },
      };
    }
    if (answer !== undefined) await this.finish.respond(this.request, answer);
  }
}
