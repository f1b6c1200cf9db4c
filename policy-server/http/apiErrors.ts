/**
 * Errors as the API answers them: every failure is `{error, message}` JSON with the right
 * status. Route code throws ApiError; this module also translates what express's body
 * parsers, the authenticator and the policy parser throw. Unexpected errors become a 500
 * whose body says nothing about internals; the log has the detail.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { PolicyError } from '../../common/policy/policyDocument';
import { AuthenticationError, IdentityProviderUnavailableError } from '../auth/bearerAuthenticator';
import { describeError, type Logger } from '../../common/log/logger';
import type { ApiErrorBody } from '../../common/policy/policyServerApi';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Partial<ApiErrorBody> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function sendError(res: Response, status: number, body: ApiErrorBody, headers: Record<string, string> = {}): void {
  res
    .status(status)
    .set({ 'Cache-Control': 'no-store', ...headers })
    .json(body);
}

export const notFound: RequestHandler = (req, res) => {
  sendError(res, 404, { error: 'not_found', message: `No such endpoint: ${req.method} ${req.path}` });
};

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (error instanceof ApiError)
      return sendError(res, error.status, { error: error.code, message: error.message, ...error.extra }, error.headers);
    if (error instanceof AuthenticationError) {
      return sendError(res, 401, { error: 'unauthorized', message: error.message }, { 'WWW-Authenticate': error.wwwAuthenticate });
    }
    if (error instanceof IdentityProviderUnavailableError) {
      log.warn('identity provider unavailable', { error: describeError(error) });
      return sendError(res, 503, { error: 'idp_unavailable', message: error.message }, { 'Retry-After': '5' });
    }
    if (error instanceof PolicyError) {
      return sendError(res, 422, {
        error: 'invalid_policy',
        message: `The policy has ${error.problems.length} problem(s); fix them and publish again.`,
        problems: error.problems,
      });
    }
    const parserError = error as { type?: string; status?: number; limit?: number };
    if (parserError.type === 'entity.too.large') {
      return sendError(res, 413, {
        error: 'payload_too_large',
        message: `The request body is larger than ${parserError.limit ?? 'the limit of'} bytes.`,
      });
    }
    if (parserError.type === 'entity.parse.failed')
      return sendError(res, 400, { error: 'invalid_request', message: 'The request body is not valid JSON.' });
    if (parserError.type === 'encoding.unsupported' || parserError.type === 'charset.unsupported') {
      return sendError(res, 415, { error: 'unsupported_media_type', message: 'The request body must be UTF-8.' });
    }
    if (typeof parserError.status === 'number' && parserError.status >= 400 && parserError.status < 500) {
      return sendError(res, parserError.status, { error: 'invalid_request', message: describeError(error) });
    }
    log.error('request failed', { method: req.method, path: req.path, error: describeError(error) });
    sendError(res, 500, {
      error: 'internal_error',
      message: 'The policy server failed to handle the request; the server log has details.',
    });
  };
}
