/**
 * What an authorization server said when it refused a token request, in words for a log or
 * an error: its `error` code and description (RFC 6749 §5.2), from the body or, for a
 * refused client (401), from its WWW-Authenticate challenge; else the failure itself.
 * Never a token: none of these carries one.
 */
import * as oauth from 'openid-client';
import { describeError } from '../log/logger';

export function oauthRefusal(error: unknown): string {
  if (error instanceof oauth.ResponseBodyError) return described(error.error, error.error_description);
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    const said = error.cause.find((challenge) => challenge.parameters.error !== undefined)?.parameters;
    if (said?.error) return described(said.error, said.error_description);
  }
  return describeError(error);
}

function described(code: string, description: string | undefined): string {
  return `${code}${description ? `: ${description}` : ''}`;
}
