/**
 * What the developer is told before a browser opens on an upstream's sign-in page, from a
 * `gatehouse/authorize` request (no \`vscode\` here, so it is unit tested): the request is
 * validated, the URL checked again (https or loopback, no credentials, nothing a shell
 * could misread) and the server's title stripped to printable text. Checked by hand, not
 * with zod: zod would triple the extension bundle for five fields.
 */
import type { AuthorizeParams } from '../../common/control/controlProtocol';
import { checkAuthorizationUrl } from '../../common/net/authorizationUrl';

const REASONS = new Set(['sign-in', 'expired', 'step-up']);
const KEYS = new Set(['server', 'title', 'url', 'issuer', 'reason']);

function isAuthorizeParams(value: unknown): value is AuthorizeParams {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const p = value as Record<string, unknown>;
  return (
    Object.keys(p).every((key) => KEYS.has(key)) &&
    typeof p.server === 'string' &&
    /^[a-z0-9][a-z0-9-]{0,62}$/.test(p.server) &&
    typeof p.title === 'string' &&
    p.title.length >= 1 &&
    p.title.length <= 200 &&
    typeof p.url === 'string' &&
    p.url.length <= 8192 &&
    typeof p.issuer === 'string' &&
    URL.canParse(p.issuer) &&
    typeof p.reason === 'string' &&
    REASONS.has(p.reason)
  );
}

/** What the developer is told and what would open, or an Error for a request to refuse. */
export function authorizationPrompt(params: unknown): { message: string; url: URL } {
  if (!isAuthorizeParams(params)) throw new Error('gatehouse/authorize: malformed request');
  const { title, reason } = params;
  let url: URL;
  try {
    url = new URL(params.url);
  } catch {
    throw new Error('gatehouse/authorize: the sign-in URL is not a URL');
  }
  // The gateway matched it to the server's advertised endpoint; here: scheme and characters again.
  checkAuthorizationUrl(url, `${url.origin}${url.pathname}`);
  // Name the host the browser will open; say the issuer too when it is another one.
  const issuerHost = new URL(params.issuer).host;
  const host = url.host === issuerHost ? url.host : `${url.host} (for ${issuerHost})`;
  const shownTitle = title.replace(/[^\p{L}\p{N}\p{P}\p{Zs}]/gu, '');
  const message =
    reason === 'step-up'
      ? `${shownTitle} needs more access than you gave it. Sign in at ${host} to allow it?`
      : reason === 'expired'
        ? `Your sign-in to ${shownTitle} has expired or was refused. Sign in again at ${host}?`
        : `${shownTitle} needs you to sign in at ${host}.`;
  return { message, url };
}
