/**
 * The stages every relayed client request goes through, in order:
 *   decide   the gateway's own tool checks (pins, argument schema), then the policy: one decision
 *   confirm  a `confirm` decision waits for its reviewer; anything but approval refuses
 *   forward  the session sends it upstream (the one stage that needs a transport)
 *   filter   list results: policy, then pins on the upstream's own definitions
 *   redact   secrets out of what the client gets
 *   scan     injection markers aimed at the model: flagged, or withheld when the policy blocks
 * Each stage reads and writes the `GovernedCall`; `run` returns how the call ends and the
 * caller finishes it with `call.complete(end)`. No stage touches a transport, so each is
 * tested with plain objects.
 */
import { ErrorCode, isJSONRPCResultResponse, type JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { REVIEW_PROOF_META_KEY } from '../../common/policy/policyServerApi';
import { describeError, type Logger } from '../../common/log/logger';
import type { ServerConfig } from '../config/gatewayConfig';
import type { CallAuditor } from '../audit/callAuditor';
import type { CallConfirmations } from '../confirmation/callConfirmations';
import { scanValue } from '../guardrails/injection/injectionScanner';
import type { SecretRedactor } from '../guardrails/redaction/secretRedactor';
import type { ToolGuard } from '../guardrails/toolGuard';
import { POLICY_DENIED, type CallGate, type GateDecision } from '../policy/callGate';
import type { UpstreamReply } from '../upstream/upstreamConnection';
import type { DefinitionNotice, ListedTool, ToolListing } from '../session/toolListing';
import { upstreamErrorText } from '../session/relayRules';
import { GovernedCall, type CallEnd, type CallFinish } from './governedCall';

/** What the forward stage brought back. */
export type Forwarded = { answer: UpstreamReply } | { failure: unknown } | { cancelled: true };

export interface CallPipelineDeps {
  gate: CallGate;
  tools: ToolGuard;
  auditor: CallAuditor;
  confirmations: CallConfirmations;
  redactor: SecretRedactor;
  listing: ToolListing;
  log: Logger;
  /** Sends a call's answer to the client on the request's own stream. */
  respond: CallFinish['respond'];
}

type ConfirmDecision = GateDecision & { effect: 'confirm' };

export class CallPipeline {
  /** How every call of this pipeline ends: made once, shared by its calls. */
  private readonly finish: CallFinish;

  constructor(
    private readonly server: ServerConfig,
    private readonly deps: CallPipelineDeps,
  ) {
    this.finish = { auditor: deps.auditor, respond: deps.respond };
  }

  /** A call of `request` from `client`, answered through the pipeline's `respond` when it completes. */
  begin(request: JSONRPCRequest, client: { name: string; version: string }): GovernedCall {
    return new GovernedCall(this.server.id, client, request, this.deps.auditor.audits(request.method), this.finish);
  }

  /**
   * Runs the stages; `forward` sends the (possibly amended) request upstream. `cancellation`
   * gives a signal that fires when the client cancels, which ends a reviewer's wait; it is
   * asked for only by calls that wait for a reviewer.
   */
  async run(
    call: GovernedCall,
    forward: (request: JSONRPCRequest) => Promise<Forwarded>,
    cancellation: () => AbortSignal,
  ): Promise<CallEnd> {
    try {
      return await this.stages(call, forward, cancellation);
    } catch (error) {
      // Deny when unsure: a stage that failed in a way it did not foresee ends the call with an error, audited.
      this.deps.log.error('a call failed inside the gateway', { method: call.request.method, error: describeError(error) });
      call.audited = true;
      return {
        status: 'error',
        answer: { error: { code: ErrorCode.InternalError, message: 'Gatehouse could not finish this request; the gateway log says why.' } },
      };
    }
  }

  private async stages(
    call: GovernedCall,
    forward: (request: JSONRPCRequest) => Promise<Forwarded>,
    cancellation: () => AbortSignal,
  ): Promise<CallEnd> {
    const decision = this.decide(call);
    if (decision.effect === 'deny') {
      this.deps.log.info('denied request', { method: call.request.method, rule: decision.ruleId });
      return call.refuse('deny', decision.message, POLICY_DENIED);
    }
    if (decision.effect === 'confirm') {
      const refused = await this.confirm(call, decision, cancellation());
      if (refused) return refused;
    }
    call.intend();
    const forwarded = await forward(call.request);
    if ('cancelled' in forwarded) {
      // The upstream may have acted already, so the call is still audited; the client expects no answer.
      call.flags.push('cancelled');
      return { status: 'error', answer: undefined };
    }
    if ('failure' in forwarded) return this.upstreamError(call, forwarded.failure);
    const answer = forwarded.answer;
    if (!isJSONRPCResultResponse(answer)) {
      // The upstream's own error text and data can echo what it was given: redacted like a result.
      const error = this.deps.redactor.redactValue(answer.error);
      call.redactions = error.findings;
      return { status: 'error', answer: { error: error.value as typeof answer.error }, fromUpstream: true };
    }
    let result: Record<string, unknown>;
    try {
      // Pins are judged on what the upstream sent; secrets are redacted from what the client gets.
      result = this.redact(call, await this.filter(call, answer.result));
    } catch (error) {
      this.deps.log.warn('result could not be scanned for secrets; withholding it', {
        method: call.request.method,
        error: describeError(error),
      });
      return {
        status: 'error',
        answer: {
          error: { code: ErrorCode.InternalError, message: 'Gatehouse could not scan this result for secrets, so it is withheld.' },
        },
      };
    }
    return this.scan(call, result) ?? { status: result.isError === true ? 'error' : 'ok', answer: { result }, fromUpstream: true };
  }

  /**
   * The gateway's own tool checks first (policy conditions must only ever see arguments of
   * the approved shape), then the policy. Tool flags (name collisions) join the call's flags.
   */
  decide(call: GovernedCall): GateDecision {
    const check = this.deps.tools.check(this.server.id, call.request);
    call.flags.push(...check.flags);
    const decision: GateDecision = check.refusal
      ? { effect: 'deny', ...check.refusal }
      : this.deps.gate.decide(this.server.id, call.request);
    call.rule = decision.ruleId;
    if (decision.effect === 'deny') call.flags.push(...(decision.flags ?? []));
    if (decision.effect === 'confirm') call.audited = true;
    return decision;
  }

  /**
   * Waits for a reviewer's answer. The reviewer sees the arguments with secrets redacted.
   * Returns how the call ends when it may not go on; undefined once approved.
   */
  async confirm(call: GovernedCall, decision: ConfirmDecision, cancelled: AbortSignal): Promise<CallEnd | undefined> {
    const request = call.request;
    let answer;
    try {
      answer = await this.deps.confirmations.confirm(
        {
          serverId: this.server.id,
          method: request.method,
          subject: decision.subject,
          arguments: this.deps.redactor.redactValue(decision.args).value as Record<string, unknown>,
          ruleId: decision.ruleId,
          message: decision.message,
          ...(decision.reviewers !== undefined ? { reviewers: decision.reviewers } : {}),
          ...(request.method === 'tools/call' ? { risk: this.deps.listing.riskOf(decision.subject) } : {}),
          timeoutMs: decision.timeoutMs,
        },
        cancelled,
      );
    } catch (error) {
      answer = {
        outcome: 'denied' as const,
        message: `${decision.message} Gatehouse could not ask a reviewer (${describeError(error)}), so the call is denied.`,
      };
    }
    if (answer.reviewer !== undefined) call.reviewer = answer.reviewer;
    if (answer.outcome !== 'approved') {
      this.deps.log.info('confirmation did not approve the request', {
        method: request.method,
        rule: decision.ruleId,
        outcome: answer.outcome,
      });
      // A client that cancelled expects no answer; the refusal is still audited.
      return call.refuse(
        answer.outcome === 'timeout' ? 'confirm-timeout' : 'confirm-denied',
        answer.message,
        POLICY_DENIED,
        !cancelled.aborted,
      );
    }
    call.decision = 'confirm-approved';
    // Through the policy server's relay the approval must be shown: the review's id, which the relay checks and strips.
    if (answer.reviewId !== undefined && this.server.viaRelay) call.request = withReviewProof(request, answer.reviewId);
    return undefined;
  }

  /**
   * Policy filtering, then (for tool lists) pins, poisoning flags and the hints clients see.
   * Definition changes and flags noticed here get an audit event each.
   */
  async filter(call: GovernedCall, result: Record<string, unknown>): Promise<Record<string, unknown>> {
    const method = call.request.method;
    const allowed = this.deps.gate.filterResult(this.server.id, method, result);
    if (method !== 'tools/list' || !Array.isArray(allowed.tools)) return allowed;
    const listed = this.deps.listing.present(allowed.tools as ListedTool[]);
    await this.auditDefinitions(call, listed.notices);
    return { ...allowed, tools: listed.tools };
  }

  /**
   * Secrets out of the result; what was removed is counted on the call (kinds and counts,
   * never values). The `requestState` of an `input_required` result (MCP 2026-07-28) is
   * the server's own opaque, usually signed, value that the client must send back
   * unchanged: redacting inside it would break the call, so it passes as it came.
   */
  redact(call: GovernedCall, result: Record<string, unknown>): Record<string, unknown> {
    const { requestState, ...rest } = result;
    const keepState = result.resultType === 'input_required' && typeof requestState === 'string';
    const redacted = this.deps.redactor.redactResult(call.request.method, keepState ? rest : result);
    call.redactions = redacted.findings;
    if (Object.keys(redacted.findings).length > 0) {
      this.deps.log.info('redacted secrets from a result', { method: call.request.method, kinds: redacted.findings });
    }
    const clean = redacted.result as Record<string, unknown>;
    return keepState ? { ...clean, requestState } : clean;
  }

  /** Injection markers in an audited result: flagged, and the result withheld when the policy blocks them. */
  scan(call: GovernedCall, result: Record<string, unknown>): CallEnd | undefined {
    if (!call.audited) return undefined;
    const injection = scanValue(result).map((flag) => `injection:${flag}`);
    call.flags.push(...injection);
    if (injection.length === 0 || this.deps.gate.injectionMode() !== 'block') return undefined;
    return {
      status: 'error',
      answer: {
        error: {
          code: POLICY_DENIED,
          message: `Gatehouse withheld this result: it carries markers of instructions aimed at the model (${injection.join(', ')}), and the org policy blocks those.`,
        },
      },
    };
  }

  private upstreamError(call: GovernedCall, failure: unknown): CallEnd {
    const message = upstreamErrorText(this.server.id, failure, call.request.method);
    return { status: 'upstream-error', answer: { error: { code: ErrorCode.InternalError, message } } };
  }

  /** One audit event per noticed definition change or flag: `tools/list`, the tool, its flags. */
  private async auditDefinitions(call: GovernedCall, notices: DefinitionNotice[]): Promise<void> {
    for (const notice of notices) {
      await this.deps.auditor.record({
        serverId: this.server.id,
        client: call.client,
        request: call.request,
        subject: notice.tool,
        startedAt: performance.now(),
        receivedAt: new Date().toISOString(),
        decision: notice.hidden ? 'deny' : 'allow',
        status: notice.hidden ? 'denied' : 'ok',
        flags: notice.flags,
      });
    }
  }
}

/** `request` with an approved review's id in `params._meta`, for the relay. */
function withReviewProof(request: JSONRPCRequest, reviewId: string): JSONRPCRequest {
  const params = request.params ?? {};
  const meta = (params._meta ?? {}) as Record<string, unknown>;
  return { ...request, params: { ...params, _meta: { ...meta, [REVIEW_PROOF_META_KEY]: reviewId } } };
}
