/**
 * The gateway's policy checkpoint for client requests. `PolicyGate` asks the verified
 * policy in force; `OPEN_GATE` is the unmanaged mode (a local config file and no policy
 * server), where everything configured may be used. Rules name tools directly; resources
 * and prompts are named `resource:<uri>` and `prompt:<name>`, so `*` covers all three.
 */
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { ambiguousName, subjectOf } from '../../common/policy/callSubject';
import { filterListResult } from '../../common/policy/listFilter';
import type { PolicySource } from './policySource';

export { POLICY_DENIED } from '../../common/policy/callSubject';

/**
 * What the gate says about one request. `confirm` carries what a reviewer needs: the
 * policy's name for the subject (`resource:<uri>` for reads), the arguments, the rule and,
 * when the policy names one, the reviewer group (otherwise the caller confirms it).
 */
export type GateDecision =
  | { effect: 'allow'; ruleId?: string }
  | { effect: 'deny'; message: string; ruleId?: string; flags?: string[] }
  | {
      effect: 'confirm';
      message: string;
      ruleId: string;
      reviewers?: string;
      timeoutMs: number;
      subject: string;
      args: Record<string, unknown>;
    };

/** Why a request may not be relayed: the message the user reads, the deciding rule, audit flags. */
export interface Refusal {
  message: string;
  ruleId?: string;
  flags?: string[];
}

export interface CallGate {
  /** Why this user may not use the server at all, or undefined. */
  serverRefusal(serverId: string): string | undefined;
  /** Whether this request may be relayed, must be confirmed first, or is refused, and by which rule. */
  decide(serverId: string, request: JSONRPCRequest): GateDecision;
  /** Whether injection flags only get recorded, or also hide tools and withhold results. */
  injectionMode(): 'advisory' | 'block';
  /** Whether calls of a listed tool wait for confirmation (for display; each call is decided on its own). */
  toolEffect(serverId: string, tool: string): 'allow' | 'confirm' | 'confirm-sometimes';
  /** Removes what the user may not use from a list result. */
  filterResult(serverId: string, method: string, result: Record<string, unknown>): Record<string, unknown>;
}

const ALLOW: GateDecision = { effect: 'allow' };

export const OPEN_GATE: CallGate = {
  serverRefusal: () => undefined,
  decide: () => ALLOW,
  injectionMode: () => 'advisory',
  toolEffect: () => 'allow',
  filterResult: (_serverId, _method, result) => result,
};

export class PolicyGate implements CallGate {
  constructor(private readonly source: PolicySource) {}

  serverRefusal(serverId: string): string | undefined {
    const { decider, denial } = this.source.state;
    if (!decider) return denial ?? 'No policy is in force.';
    if (!decider.isServerAvailable(serverId))
      return `The org policy does not make server "${serverId}" available to you. Ask your policy admin.`;
    return undefined;
  }

  decide(serverId: string, request: JSONRPCRequest): GateDecision {
    if (request.method === 'ping') return ALLOW;
    const refusal = this.serverRefusal(serverId);
    if (refusal) return { effect: 'deny', message: refusal };
    const subject = subjectOf(request);
    if (!subject) return ALLOW; // list methods and logging: results are filtered instead
    const ambiguity = ambiguousName(request.method, subject.name);
    if (ambiguity) return { effect: 'deny', message: ambiguity };
    const decider = this.source.state.decider!;
    const decision = decider.decide(serverId, subject.name, subject.args);
    const ruleId = decision.ruleId !== undefined ? { ruleId: decision.ruleId } : {};
    if (decision.effect === 'allow') return { effect: 'allow', ...ruleId };
    if (decision.effect === 'confirm' && decision.ruleId !== undefined) {
      return {
        effect: 'confirm',
        message: decision.message,
        ruleId: decision.ruleId,
        ...(decision.reviewers !== undefined ? { reviewers: decision.reviewers } : {}),
        timeoutMs: decider.policy.guardrails.confirmationTimeoutSeconds * 1000,
        subject: subject.name,
        args: subject.args,
      };
    }
    return { effect: 'deny', message: decision.message, ...ruleId };
  }

  injectionMode(): 'advisory' | 'block' {
    return this.source.state.decider?.policy.guardrails.injection ?? 'block';
  }

  toolEffect(serverId: string, tool: string): 'allow' | 'confirm' | 'confirm-sometimes' {
    const confirmation = this.source.state.decider?.confirmationOf(serverId, tool) ?? 'always';
    return confirmation === 'always' ? 'confirm' : confirmation === 'sometimes' ? 'confirm-sometimes' : 'allow';
  }

  filterResult(serverId: string, method: string, result: Record<string, unknown>): Record<string, unknown> {
    return filterListResult(this.source.state.decider, serverId, method, result);
  }
}
