/**
 * Input checks at the HTTP boundary: route parameters, query strings and JSON bodies are
 * validated here, and anything else is refused with a 400 that says which field is wrong.
 */
import type { Request } from 'express';
import { z } from 'zod';
import { ApiError } from './apiErrors';

export function parseVersionNumber(value: unknown, name: string): number {
  if (typeof value !== 'string' || !/^[1-9][0-9]{0,8}$/.test(value)) {
    throw new ApiError(
      400,
      'invalid_request',
      `${name} must be a policy version number (1, 2, ...), got ${JSON.stringify(value ?? null)}.`,
    );
  }
  return Number(value);
}

export function parseJsonBody<S extends z.ZodType>(req: Request, schema: S): z.infer<S> {
  if (!req.is('application/json'))
    throw new ApiError(415, 'unsupported_media_type', 'Send the request body as JSON (Content-Type: application/json).');
  const result = schema.safeParse(req.body);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.message}`);
    throw new ApiError(400, 'invalid_request', `The request body is invalid: ${problems.join('; ')}.`);
  }
  return result.data;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const NO_CONTROL_CHARACTERS = /^[^\u0000-\u001f\u007f]+$/;

/** A non-empty string of at most `max` characters without control characters (names, ids, notes shown to people). */
export function printableText(max: number) {
  return z.string().min(1).max(max).regex(NO_CONTROL_CHARACTERS, 'must not contain control characters');
}

/** Subjects and session ids are opaque IdP strings; bound them and forbid control characters. */
export const OpaqueId = printableText(512);
