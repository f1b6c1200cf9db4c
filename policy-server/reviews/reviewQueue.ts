/**
 * Second-person review of tool calls. A gateway whose policy says a call needs a reviewer
 * group queues it here and waits; a member of that group (never the requester) approves or
 * denies it; no decision before the policy's confirmation timeout means denied.
 *
 * The server does not take the gateway's word for what needs review or by whom: it decides
 * the call again against the requester's effective policy, and it checks the reviewer's
 * membership against the policy current at decision time.
 *
 * Reviews are kept in a ReviewStore (memory for one server, PostgreSQL shared by replicas);
 * they last minutes, and a lost review fails closed (the waiting call is denied). A gateway
 * long-polling one replica is woken when the review is decided on another (`decidedElsewhere`,
 * from the cluster's events). Bounded per requester and in total, so a user cannot flood
 * reviewers.
 */
import { randomUUID } from 'node:crypto';
import { compileEffectivePolicy, resolveGroups, trustedEmail } from '../../common/policy/effectivePolicy';
import type { CallerIdentity } from '../../common/policy/identity';
import { PolicyDecider } from '../../common/policy/policyDecider';
import type { ReviewDecisionBody, ReviewParty, ReviewRecord, ReviewRequestBody } from '../../common/policy/policyServerApi';
import type { Logger } from '../../common/log/logger';
import { ApiError } from '../http/apiErrors';
import type { PolicyService } from '../policies/policyService';
import { argumentsDigest } from '../../common/policy/reviewProof';
import { MemoryReviewStore, withExpiry, type ReviewStore, type StoredReview } from './reviewStore';

export interface ReviewQueueLimits {
  maxPendingPerUser: number;
  maxPending: number;
  /** How long a decided or expired review stays readable, so the waiting gateway sees the outcome. */
  keepDecidedMs: number;
}

const DEFAULT_LIMITS: ReviewQueueLimits = { maxPendingPerUser: 20, maxPending: 10_000, keepDecidedMs: 10 * 60_000 };

export class ReviewQueue {
  /** Long-polls waiting here, by review id. */
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly limits: ReviewQueueLimits;

  constructor(
    private readonly policies: PolicyService,
    private readonly log: Logger,
    limits: Partial<ReviewQueueLimits> = {},
    private readonly store: ReviewStore = new MemoryReviewStore(),
    /** Tells the other replicas a review was decided (their long-polls wake). */
    private readonly announceDecided: (id: string) => void = () => undefined,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** A review was decided on another replica: wake the long-polls waiting here. */
  decidedElsewhere(id: string): void {
    this.wake(id);
  }

  /** Queues a call for review if, and only if, the requester's policy asks a reviewer group for it. */
  async request(caller: CallerIdentity, body: ReviewRequestBody, now = Date.now()): Promise<ReviewRecord> {
    const current = await this.policies.current();
    if (!current) throw new ApiError(409, 'no_policy', 'No policy has been published, so no call can be reviewed.');
    const decider = new PolicyDecider(compileEffectivePolicy(current.document, current.version, caller));
    if (!decider.isServerAvailable(body.server)) {
      throw new ApiError(
        409,
        'not_reviewable',
        `The org policy does not make server "${body.server}" available to you, so there is nothing to review.`,
      );
    }
    const decision = decider.decide(body.server, body.tool, body.arguments);
    if (decision.effect !== 'confirm' || decision.reviewers === undefined || decision.ruleId === undefined) {
      throw new ApiError(
        409,
        'not_reviewable',
        `Policy version ${current.version} does not ask a reviewer group to confirm "${body.tool}" on "${body.server}" with these arguments (its decision: ${decision.effect}).`,
      );
    }
    await this.store.purge(now - this.limits.keepDecidedMs);
    const pending = await this.store.pending(now);
    if (
      pending.length >= this.limits.maxPending ||
      pending.filter((record) => record.requester.sub === caller.sub).length >= this.limits.maxPendingPerUser
    ) {
      throw new ApiError(
        429,
        'too_many_reviews',
        'Too many of your calls are already waiting for review. Wait for reviewers to answer, then try again.',
      );
    }
    const rule = current.document.rules.find((candidate) => candidate.id === decision.ruleId);
    const timeoutMs = current.document.guardrails.confirmationTimeoutSeconds * 1000;
    const record: StoredReview = {
      id: randomUUID(),
      state: 'pending',
      requester: party(caller),
      server: body.server,
      method: body.method,
      tool: body.tool,
      arguments: body.arguments,
      rule: decision.ruleId,
      ...(rule?.reason ? { reason: rule.reason } : {}),
      reviewers: decision.reviewers,
      requestedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + timeoutMs).toISOString(),
      argumentsDigest: argumentsDigest(body.arguments),
    };
    await this.store.insert(record);
    // Long-polls here end at the deadline; the store reads an undecided review as expired from then on.
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.wake(record.id);
    }, timeoutMs);
    timer.unref();
    this.timers.add(timer);
    this.log.info('review requested', {
      id: record.id,
      requester: record.requester.sub,
      server: record.server,
      tool: record.tool,
      rule: record.rule,
      reviewers: record.reviewers,
    });
    return record;
  }

  /** Pending reviews the caller may decide: in the reviewer group, and not their own. */
  async pendingFor(caller: CallerIdentity): Promise<ReviewRecord[]> {
    const groups = await this.groupsOf(caller);
    return (await this.store.pending(Date.now())).filter((record) => record.requester.sub !== caller.sub && groups.has(record.reviewers));
  }

  /**
   * One review, for its requester or a possible reviewer (anyone else gets 404, so ids
   * reveal nothing). With `waitMs`, a pending review is answered when it is decided or
   * expires, or after `waitMs`, whichever comes first.
   */
  async get(caller: CallerIdentity, id: string, waitMs = 0, signal?: AbortSignal): Promise<ReviewRecord> {
    const first = await this.read(id);
    if (!first || !(first.requester.sub === caller.sub || (await this.groupsOf(caller)).has(first.reviewers))) {
      throw new ApiError(
        404,
        'not_found',
        `No review ${id} that you can see. Reviews that ended long ago, or (with the embedded store) before a policy-server restart, are gone; a waiting call is then denied.`,
      );
    }
    if (first.state !== 'pending' || waitMs <= 0 || signal?.aborted) return first;
    await new Promise<void>((resolve) => {
      const waiting = this.waiters.get(id) ?? new Set<() => void>();
      this.waiters.set(id, waiting);
      const done = () => {
        clearTimeout(timer);
        waiting.delete(done);
        if (waiting.size === 0) this.waiters.delete(id);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(waitMs, Math.max(0, Date.parse(first.expiresAt) - Date.now()) + 50));
      waiting.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
    return (await this.read(id)) ?? first;
  }

  async decide(caller: CallerIdentity, id: string, body: ReviewDecisionBody): Promise<ReviewRecord> {
    const record = await this.read(id);
    const groups = await this.groupsOf(caller);
    if (!record || !(record.requester.sub === caller.sub || groups.has(record.reviewers))) {
      throw new ApiError(404, 'not_found', `No review ${id} that you can decide.`);
    }
    if (record.requester.sub === caller.sub) {
      throw new ApiError(403, 'self_review', 'You cannot decide your own request: the policy asks a second person to review it.');
    }
    if (!groups.has(record.reviewers)) {
      throw new ApiError(403, 'forbidden', `Only members of group "${record.reviewers}" may decide this review.`);
    }
    if (record.state !== 'pending') {
      throw new ApiError(
        409,
        'already_decided',
        `Review ${id} is already ${record.state}${record.reviewer ? ` by ${record.reviewer.email ?? record.reviewer.sub}` : ''}.`,
      );
    }
    const settled: ReviewRecord = {
      ...record,
      state: body.decision === 'approve' ? 'approved' : 'denied',
      reviewer: party(caller),
      ...(body.note ? { note: body.note } : {}),
      decidedAt: new Date().toISOString(),
    };
    // Compare-and-set: a second reviewer (here or on another replica) answering at once loses.
    const { won, record: stored } = await this.store.settle(settled);
    if (!won) {
      const now = stored ? withExpiry(stored, Date.now()) : undefined;
      throw new ApiError(
        409,
        'already_decided',
        `Review ${id} is already ${now?.state ?? 'gone'}${now?.reviewer ? ` by ${now.reviewer.email ?? now.reviewer.sub}` : ''}.`,
      );
    }
    this.wake(id);
    this.announceDecided(id);
    this.log.info('review decided', { id, state: settled.state, reviewer: caller.sub, requester: record.requester.sub });
    return stored ?? settled;
  }

  /**
   * The relay's check before it lets a reviewer-confirmed call pass: the review is approved,
   * was requested by this caller for exactly this call (server, method, name, and the digest
   * of the arguments it carries), and has not been used before. Uses it up; resolves with
   * the reviewer, or undefined (the call is refused).
   */
  async redeem(
    caller: CallerIdentity,
    id: string,
    call: { server: string; method: string; tool: string; argumentsDigest: string; rule: string | undefined; reviewers: string },
  ): Promise<ReviewParty | undefined> {
    const record = (await this.read(id)) as StoredReview | undefined;
    if (!record || record.state !== 'approved' || record.requester.sub !== caller.sub) return undefined;
    if (
      record.server !== call.server ||
      record.method !== call.method ||
      record.tool !== call.tool ||
      record.argumentsDigest !== call.argumentsDigest
    )
      return undefined;
    // Approved under the rule and reviewer group that ask for it now, not an older policy's.
    if (record.rule !== call.rule || record.reviewers !== call.reviewers) return undefined;
    if (!(await this.store.consume(id))) return undefined; // already used for a call
    this.log.info('review redeemed at the relay', { id, requester: caller.sub, server: call.server, tool: call.tool });
    return record.reviewer;
  }

  /** Long-polls end (their waiting calls see the review as it is); used on shutdown. */
  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const id of [...this.waiters.keys()]) this.wake(id);
  }

  /** The review as it stands now: a pending one past its deadline reads as expired. */
  private async read(id: string): Promise<ReviewRecord | undefined> {
    const record = await this.store.get(id);
    return record ? withExpiry(record, Date.now()) : undefined;
  }

  private wake(id: string): void {
    for (const wake of [...(this.waiters.get(id) ?? [])]) wake();
  }

  /** The caller's groups under the policy in force now (not when the review was requested). */
  private async groupsOf(caller: CallerIdentity): Promise<Set<string>> {
    const current = await this.policies.current();
    return new Set(current ? resolveGroups(current.document, caller) : []);
  }
}

function party(caller: CallerIdentity): ReviewParty {
  const email = trustedEmail(caller);
  return { sub: caller.sub, ...(email ? { email } : {}) };
}
