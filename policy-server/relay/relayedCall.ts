/**
 * One request with a subject (`tools/call`, `resources/read`, `prompts/get`, subscriptions,
 * completions) through the relay, in the gateway's vocabulary (gateway/call/): `decide`
 * against the caller's own effective policy, `confirm` by redeeming the proof of a review
 * approved for exactly this call, then the route forwards and filters, and `complete(status)`
 * writes the central audit event, durable before the answer leaves. Refusals are always
 * audited; passing calls when they act or read, or a reviewer approved them.
 */
import { createAuditEventId, type AuditDecision, type AuditEvent } from '../../common/audit/auditEvent';
import { ambiguousName, AUDITED_METHODS, type CallSubject } from '../../common/policy/callSubject';
import type { CallerIdentity } from '../../common/policy/identity';
import type { PolicyDecider, PolicyDecision } from '../../common/policy/policyDecider';
import { argumentsDigest } from '../../common/policy/reviewProof';
import { GATEHOUSE_VERSION } from '../../common/version';
import type { AuditStore } from '../audit/auditStore';
import type { ReviewQueue } from '../reviews/reviewQueue';

export class RelayedCall {
  readonly startedAt = performance.now();
  decision: AuditDecision = 'allow';
  rule: string | undefined;
  reviewer: string | undefined;
  private audited: boolean;

  constructor(
    private readonly audit: AuditStore,
    readonly caller: CallerIdentity,
    readonly serverId: string,
    readonly method: string,
    readonly subject: CallSubject,
  ) {
    this.audited = AUDITED_METHODS.has(method);
  }

  /**
   * decide, then confirm: the message the caller is refused with, or undefined when the call
   * may pass. A reviewer group's approval can be shown (a review approved for exactly this
   * call, used once); a self-confirmation cannot, since the relay cannot tell whether anyone
   * confirmed, so it is refused here.
   */
  async govern(decider: PolicyDecider, reviewProof: string | undefined, reviews: Pick<ReviewQueue, 'redeem'> | undefined) {
    const decision = this.decide(decider);
    if (decision.effect === 'deny') return this.refuse(decision.message);
    if (decision.effect === 'allow') return undefined;
    return this.confirm(decision, reviewProof, reviews);
  }

  decide(decider: PolicyDecider): PolicyDecision {
    const ambiguous = ambiguousName(this.method, this.subject.name);
    const decision: PolicyDecision =
      ambiguous === undefined
        ? decider.decide(this.serverId, this.subject.name, this.subject.args)
        : { effect: 'deny', message: ambiguous, ruleId: undefined, reviewers: undefined };
    this.rule = decision.ruleId;
    return decision;
  }

  async confirm(
    decision: PolicyDecision,
    reviewProof: string | undefined,
    reviews: Pick<ReviewQueue, 'redeem'> | undefined,
  ): Promise<string | undefined> {
    if (decision.reviewers === undefined) {
      return this.refuse(`${decision.message} The relay cannot tell whether anyone confirmed it, so it is refused here.`);
    }
    const reviewer =
      reviewProof !== undefined && reviews
        ? await reviews.redeem(this.caller, reviewProof, {
            server: this.serverId,
            method: this.method,
            tool: this.subject.name,
            argumentsDigest: argumentsDigest(this.subject.args),
            rule: decision.ruleId,
            reviewers: decision.reviewers,
          })
        : undefined;
    if (!reviewer)
      return this.refuse(`${decision.message} No review approved for exactly this call came with it, so the relay refuses it.`);
    this.decision = 'confirm-approved';
    this.reviewer = reviewer.email ?? reviewer.sub;
    this.audited = true;
    return undefined;
  }

  /** The one exit of an audited call: the central audit event, committed before the answer leaves. */
  async complete(status: AuditEvent['status']): Promise<void> {
    if (!this.audited) return;
    await this.audit.append([
      {
        id: createAuditEventId(),
        time: new Date().toISOString(),
        user: this.caller.sub,
        client: { name: 'gatehouse-relay', version: GATEHOUSE_VERSION },
        server: this.serverId,
        method: this.method,
        tool: this.subject.name.slice(0, 1024),
        decision: this.decision,
        ...(this.rule ? { rule: this.rule } : {}),
        ...(this.reviewer ? { reviewer: this.reviewer } : {}),
        status,
        redactions: {},
        flags: ['via-relay'],
        latencyMs: Math.round((performance.now() - this.startedAt) * 1000) / 1000,
      },
    ]);
  }

  private refuse(message: string): string {
    this.decision = 'deny';
    this.audited = true;
    return message;
  }
}
