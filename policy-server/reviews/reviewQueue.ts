/**
 * Second-person review of tool calls. A gateway whose policy says a call needs a reviewer
 * group queues it here and waits; a member of that group (never the requester) approves or
 * denies it; no decision before the policy's confirmation timeout means denied.
 *
 * The server does not take the gateway's word for what needs review or by whom: it decides
 * the call again against the requester's effective policy, and it checks the reviewer's
 * membership against the policy current at decision time.
 *
 * Reviews live in memory: they last minutes, and a lost review fails closed (the waiting
 * call is denied). Bounded per requester and in total, so a user cannot flood reviewers.
 */
import { randomUUID } from 'node:crypto';
import { compileEffectivePolicy, resolveGroups, trustedEmail } from '../../common/policy/effectivePolicy';
import type { CallerIdentity } from '../../common/policy/identity';
import { PolicyDecider } from '../../common/policy/policyDecider';
import type { ReviewDecisionBody, ReviewParty, ReviewRecord, ReviewRequestBody } from '../../common/policy/policyServerApi';
import type { Logger } from '../../common/log/logger';
import { ApiError } from '../http/apiErrors';
import type { PolicyService } from '../policies/policyService';

export interface ReviewQueueLimits {
  maxPendingPerUser: number;
  maxPending: number;
  /** How long a decided or expired review stays readable, so the waiting gateway sees the outcome. */
  keepDecidedMs: number;
}

const DEFAULT_LIMITS: ReviewQueueLimits = { maxPendingPerUser: 20, maxPending: 10_000, keepDecidedMs: 10 * 60_000 };

interface Entry {
  record: ReviewRecord;
  expiry: NodeJS.Timeout;
  waiters: Set<() => void>;
}

export class ReviewQueue {
  private readonly entries = new Map<string, Entry>();
  private readonly limits: ReviewQueueLimits;

  constructor(private readonly policies: PolicyService, private readonly log: Logger, limits: Partial<ReviewQueueLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Queues a call for review if, and only if, the requester's policy asks a reviewer group for it. */
  async request(caller: CallerIdentity, body: ReviewRequestBody, now = Date.now()): Promise<ReviewRecord> {
    const current = await this.policies.current();
    if (!current) throw new ApiError(409, 'no_policy', 'No policy has been published, so no call can be reviewed.');
    const decider = new PolicyDecider(compileEffectivePolicy(current.document, current.version, caller));
    if (!decider.isServerAvailable(body.server)) {
      throw new ApiError(409, 'not_reviewable', `The org policy does not make server "${body.server}" available to you, so there is nothing to review.`);
    }
    const decision = decider.decide(body.server, body.tool, body.arguments);
    if (decision.effect !== 'confirm' || decision.reviewers === undefined || decision.ruleId === undefined) {
      throw new ApiError(409, 'not_reviewable', `Policy version ${current.version} does not ask a reviewer group to confirm "${body.tool}" on "${body.server}" with these arguments (its decision: ${decision.effect}).`);
    }
    const pending = [...this.entries.values()].filter((entry) => entry.record.state === 'pending');
    if (pending.length >= this.limits.maxPending || pending.filter((entry) => entry.record.requester.sub === caller.sub).length >= this.limits.maxPendingPerUser) {
      throw new ApiError(429, 'too_many_reviews', 'Too many of your calls are already waiting for review. Wait for reviewers to answer, then try again.');
    }
    const rule = current.document.rules.find((candidate) => candidate.id === decision.ruleId);
    const timeoutMs = current.document.guardrails.confirmationTimeoutSeconds * 1000;
    const record: ReviewRecord = {
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
    };
    const entry: Entry = { record, waiters: new Set(), expiry: setTimeout(() => this.settle(entry, 'expired'), timeoutMs) };
    entry.expiry.unref();
    this.entries.set(record.id, entry);
    this.log.info('review requested', { id: record.id, requester: record.requester.sub, server: record.server, tool: record.tool, rule: record.rule, reviewers: record.reviewers });
    return record;
  }

  /** Pending reviews the caller may decide: in the reviewer group, and not their own. */
  async pendingFor(caller: CallerIdentity): Promise<ReviewRecord[]> {
    const groups = await this.groupsOf(caller);
    return [...this.entries.values()]
      .map((entry) => entry.record)
      .filter((record) => record.state === 'pending' && record.requester.sub !== caller.sub && groups.has(record.reviewers));
  }

  /**
   * One review, for its requester or a possible reviewer (anyone else gets 404, so ids
   * reveal nothing). With `waitMs`, a pending review is answered when it is decided or
   * expires, or after `waitMs`, whichever comes first.
   */
  async get(caller: CallerIdentity, id: string, waitMs = 0, signal?: AbortSignal): Promise<ReviewRecord> {
    const entry = this.entries.get(id);
    if (!entry || !(entry.record.requester.sub === caller.sub || (await this.groupsOf(caller)).has(entry.record.reviewers))) {
      throw new ApiError(404, 'not_found', `No review ${id} that you can see. Reviews are kept in memory; after a policy-server restart a waiting call is denied.`);
    }
    if (entry.record.state === 'pending' && waitMs > 0 && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          entry.waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        entry.waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
    return entry.record;
  }

  async decide(caller: CallerIdentity, id: string, body: ReviewDecisionBody): Promise<ReviewRecord> {
    const entry = this.entries.get(id);
    const groups = await this.groupsOf(caller);
    if (!entry || !(entry.record.requester.sub === caller.sub || groups.has(entry.record.reviewers))) {
      throw new ApiError(404, 'not_found', `No review ${id} that you can decide.`);
    }
    const record = entry.record;
    if (record.requester.sub === caller.sub) {
      throw new ApiError(403, 'self_review', 'You cannot decide your own request: the policy asks a second person to review it.');
    }
    if (!groups.has(record.reviewers)) {
      throw new ApiError(403, 'forbidden', `Only members of group "${record.reviewers}" may decide this review.`);
    }
    if (record.state !== 'pending') {
      throw new ApiError(409, 'already_decided', `Review ${id} is already ${record.state}${record.reviewer ? ` by ${record.reviewer.email ?? record.reviewer.sub}` : ''}.`);
    }
    record.reviewer = party(caller);
    if (body.note) record.note = body.note;
    this.settle(entry, body.decision === 'approve' ? 'approved' : 'denied');
    this.log.info('review decided', { id, state: record.state, reviewer: caller.sub, requester: record.requester.sub });
    return record;
  }

  /** Pending reviews end (their waiting calls are denied); used on shutdown. */
  close(): void {
    for (const entry of this.entries.values()) {
      clearTimeout(entry.expiry);
      for (const wake of [...entry.waiters]) wake();
    }
    this.entries.clear();
  }

  private settle(entry: Entry, state: 'approved' | 'denied' | 'expired'): void {
    clearTimeout(entry.expiry);
    if (entry.record.state !== 'pending') return;
    entry.record.state = state;
    entry.record.decidedAt = new Date().toISOString();
    if (state === 'expired') this.log.info('review expired', { id: entry.record.id, requester: entry.record.requester.sub });
    for (const wake of [...entry.waiters]) wake();
    const forget = setTimeout(() => this.entries.delete(entry.record.id), this.limits.keepDecidedMs);
    forget.unref();
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
