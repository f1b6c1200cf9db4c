/**
 * The admin side of the policy server API, for `gatehouse policy ...`: one authenticated
 * request at a time, answers decoded, every failure turned into a PolicyServerRequestError
 * that carries the server's `{error, message, problems}` so the CLI can print it as is.
 */
import { requireSecureUrl } from '../auth/oidcVerifier';
import type { ApiErrorBody } from '../../common/policy/policyServerApi';
import { describeError } from '../../common/log/logger';

const REQUEST_TIMEOUT_MS = 30_000;

export class PolicyServerRequestError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly body: ApiErrorBody | undefined,
  ) {
    super(message);
    this.name = 'PolicyServerRequestError';
  }
}

export class PolicyServerClient {
  private readonly base: URL;

  constructor(
    serverUrl: string,
    private readonly token: string,
  ) {
    try {
      // The bearer token travels with every request: never over plain http to another machine.
      this.base = requireSecureUrl(serverUrl, '--server');
    } catch (error) {
      throw new PolicyServerRequestError(describeError(error), undefined, undefined);
    }
    if (!this.base.pathname.endsWith('/')) this.base.pathname += '/';
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await this.send(
      method,
      path,
      body === undefined ? undefined : { type: 'application/json', text: JSON.stringify(body) },
    );
    return { status: response.status, body: (await response.json()) as T };
  }

  async text(method: string, path: string, body?: { type: string; text: string }): Promise<{ status: number; text: string }> {
    const response = await this.send(method, path, body);
    return { status: response.status, text: await response.text() };
  }

  private async send(method: string, path: string, body: { type: string; text: string } | undefined): Promise<Response> {
    const url = new URL(path.replace(/^\//, ''), this.base);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json', ...(body ? { 'Content-Type': body.type } : {}) },
        ...(body ? { body: body.text } : {}),
        redirect: 'error',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? describeError(error);
      throw new PolicyServerRequestError(`cannot reach the policy server at ${this.base.origin}: ${reason}`, undefined, undefined);
    }
    if (response.ok) return response;
    const text = await response.text();
    let parsed: ApiErrorBody | undefined;
    try {
      const value = JSON.parse(text) as Partial<ApiErrorBody>;
      if (typeof value.error === 'string' && typeof value.message === 'string') parsed = value as ApiErrorBody;
    } catch {
      // not one of our error bodies (a proxy's page, say); report the status alone
    }
    const message = parsed ? parsed.message : `${method} ${url.pathname} answered HTTP ${response.status}`;
    throw new PolicyServerRequestError(message, response.status, parsed);
  }
}
