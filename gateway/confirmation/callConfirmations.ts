/**
 * Reviewer confirmation of calls the policy marks `confirm` (DESIGN.md flow 2). Whom to ask
 * follows the policy: a named reviewer group means a second person through the policy
 * server's review queue; otherwise the developer, through the extension's Confirm prompt
 * over the control channel. Whoever is asked, the call waits at most the policy's timeout,
 * and anything but an explicit approval (no answer, no reviewer reachable, an error) denies it.
 */
import { describeError, type Logger } from '../../common/log/logger';

export interface ConfirmationRequest {
  serverId: string;
  method: string;
  /** The policy's name for what is called: a tool name, `resource:<uri>` or `prompt:<name>`. */
  subject: string;
  /** The call's arguments with secrets already redacted: reviewers see them, logs never do. */
  arguments: Record<string, unknown>;
  ruleId: string;
  /** The policy's words: which rule asks and why. */
  message: string;
  /** Group whose members review the call; absent means the caller confirms it. */
  reviewers?: string;
  timeoutMs: number;
  /** For a tool call: the risk the gateway believes the tool has. */
  risk?: 'read' | 'write' | 'destructive';
}

export interface ConfirmationAnswer {
  outcome: 'approved' | 'denied' | 'timeout';
  /** Who answered (a `sub`); absent when nobody did. */
  reviewer?: string;
  /** For the caller when the call is not approved. */
  message: string;
  /** The policy server's review that approved it: the relay lets the call pass on it (once). */
  reviewId?: string;
}

/** One way of asking a reviewer. It may resolve early on `signal` (timeout or cancellation); the answer is then ignored. */
export interface Confirmer {
  confirm(request: ConfirmationRequest, signal: AbortSignal): Promise<ConfirmationAnswer>;
}

export class CallConfirmations {
  constructor(
    /** The policy server's review queue (managed mode), for calls that name a reviewer group. */
    private readonly reviewQueue: Confirmer | undefined,
    /** The developer's own prompt, while a control channel to the extension is up. */
    private readonly local: () => Confirmer | undefined,
    private readonly log: Logger,
  ) {}

  /** Asks the right reviewer and waits up to the request's timeout; `cancelled` ends the wait early (denied). */
  async confirm(request: ConfirmationRequest, cancelled: AbortSignal): Promise<ConfirmationAnswer> {
    const confirmer = request.reviewers !== undefined ? this.reviewQueue : this.local();
    if (!confirmer) return { outcome: 'denied', message: `${request.message} ${unreachable(request)}` };
    const stop = new AbortController();
    const onCancel = () => stop.abort();
    cancelled.addEventListener('abort', onCancel, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<ConfirmationAnswer>((resolve) => {
      timer = setTimeout(() => {
        // Resolved before the abort below, so the race sees a timeout, not a cancellation.
        resolve({
          outcome: 'timeout',
          message: `${request.message} No reviewer answered within ${Math.round(request.timeoutMs / 1000)} s, so the call is denied.`,
        });
        stop.abort();
      }, request.timeoutMs);
    });
    const aborted = new Promise<ConfirmationAnswer>((resolve) => {
      stop.signal.addEventListener(
        'abort',
        () => resolve({ outcome: 'denied', message: 'The call was cancelled while it waited for a reviewer.' }),
        { once: true },
      );
    });
    const asked = confirmer.confirm(request, stop.signal).catch((error: unknown): ConfirmationAnswer => {
      this.log.warn('asking for confirmation failed', { server: request.serverId, subject: request.subject, error: describeError(error) });
      return {
        outcome: 'denied',
        message: `${request.message} Gatehouse could not ask a reviewer (${describeError(error)}), so the call is denied.`,
      };
    });
    try {
      // The timeout wins ties: an approval that arrives after it must not run the call.
      return await Promise.race([timedOut, aborted, asked]);
    } finally {
      clearTimeout(timer);
      cancelled.removeEventListener('abort', onCancel);
      stop.abort();
    }
  }
}

function unreachable(request: ConfirmationRequest): string {
  return request.reviewers !== undefined
    ? `It needs a reviewer from group "${request.reviewers}", but this gateway has no policy server to queue the review with, so the call is denied.`
    : 'Gatehouse cannot ask you to confirm it here (confirmations are shown by the Gatehouse VS Code extension), so the call is denied.';
}
