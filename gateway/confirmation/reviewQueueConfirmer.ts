/**
 * Second-person review through the policy server (`/v1/reviews`): queue the call, then
 * long-poll until a reviewer decides, the review expires, or the caller stops waiting.
 * The policy server re-decides whether the call needs review and who may decide it, and
 * refuses self-review; this side only reports what it answers. Transient failures while
 * waiting are retried (the review stays queued); a lost review (404) denies the call.
 */
import {
  POLICY_SERVER_PATHS,
  REVIEW_MAX_ARGUMENT_BYTES,
  REVIEW_MAX_WAIT_SECONDS,
  type ApiErrorBody,
  type ReviewRecord,
  type ReviewRequestBody,
  type ReviewResponse,
} from '../../common/policy/policyServerApi';
import { describeError, type Logger } from '../../common/log/logger';
import type { ConfirmationAnswer, ConfirmationRequest, Confirmer } from './callConfirmations';

const RETRY_MS = 1000;
const REQUEST_TIMEOUT_MS = 10_000;

export interface ReviewQueueConfirmerOptions {
  serverUrl: URL;
  /** The user's IdP token, asked for on every request so a refreshed token is used. */
  token: () => Promise<string>;
  log: Logger;
}

class ReviewApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Partial<ApiErrorBody>,
  ) {
    super(body.message ?? `the policy server answered HTTP ${status}`);
  }
}

export class ReviewQueueConfirmer implements Confirmer {
  private readonly base: URL;

  constructor(private readonly options: ReviewQueueConfirmerOptions) {
    this.base = new URL(options.serverUrl.href.endsWith('/') ? options.serverUrl.href : `${options.serverUrl.href}/`);
  }

  async confirm(request: ConfirmationRequest, signal: AbortSignal): Promise<ConfirmationAnswer> {
    const body: ReviewRequestBody = {
      server: request.serverId,
      method: request.method,
      tool: request.subject,
      arguments: boundedArguments(request.arguments),
    };
    let review: ReviewRecord;
    try {
      review = (await this.call<ReviewResponse>('POST', '', body, signal)).review;
    } catch (error) {
      if (signal.aborted) throw error;
      return {
        outcome: 'denied',
        message: `${request.message} Gatehouse could not queue it for review by group "${request.reviewers}": ${describeError(error)}. The call is denied.`,
      };
    }
    this.options.log.info('call queued for review', {
      review: review.id,
      server: request.serverId,
      subject: request.subject,
      reviewers: review.reviewers,
    });
    while (!signal.aborted) {
      try {
        review = (await this.call<ReviewResponse>('GET', `/${review.id}?wait=${REVIEW_MAX_WAIT_SECONDS}`, undefined, signal)).review;
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof ReviewApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
          return {
            outcome: 'denied',
            message: `${request.message} The review could not be followed (${error.message}), so the call is denied.`,
          };
        }
        this.options.log.warn('waiting for review failed; retrying', { review: review.id, error: describeError(error) });
        await delay(RETRY_MS, signal);
        continue;
      }
      const answer = answerOf(review, request);
      if (answer) return answer;
    }
    return { outcome: 'denied', message: 'The call stopped waiting for its review.' };
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal): Promise<T> {
    const url = new URL(`${POLICY_SERVER_PATHS.reviews.slice(1)}${path}`, this.base);
    const response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${await this.options.token()}`,
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      redirect: 'error',
      signal: AbortSignal.any([signal, AbortSignal.timeout(REVIEW_MAX_WAIT_SECONDS * 1000 + REQUEST_TIMEOUT_MS)]),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = {};
    }
    if (!response.ok)
      throw new ReviewApiError(response.status, typeof parsed === 'object' && parsed !== null ? (parsed as Partial<ApiErrorBody>) : {});
    return parsed as T;
  }
}

function answerOf(review: ReviewRecord, request: ConfirmationRequest): ConfirmationAnswer | undefined {
  const who = review.reviewer ? (review.reviewer.email ?? review.reviewer.sub) : undefined;
  const note = review.note ? `: "${review.note}"` : '';
  switch (review.state) {
    case 'pending':
      return undefined;
    case 'approved':
      return {
        outcome: 'approved',
        reviewer: review.reviewer?.sub ?? 'unknown',
        message: `Approved by ${who}${note}.`,
        reviewId: review.id,
      };
    case 'denied':
      return {
        outcome: 'denied',
        reviewer: review.reviewer?.sub ?? 'unknown',
        message: `${request.message} Reviewer ${who} denied it${note}.`,
      };
    case 'expired':
      return {
        outcome: 'timeout',
        message: `${request.message} No reviewer from group "${review.reviewers}" answered in time, so the call is denied.`,
      };
  }
}

/** Arguments as reviewers see them; too large to show, they are replaced by a note (the policy server still re-decides on what it is sent). */
function boundedArguments(args: Record<string, unknown>): Record<string, unknown> {
  return JSON.stringify(args).length <= REVIEW_MAX_ARGUMENT_BYTES
    ? args
    : { note: `arguments too large to show (over ${REVIEW_MAX_ARGUMENT_BYTES} bytes)` };
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
