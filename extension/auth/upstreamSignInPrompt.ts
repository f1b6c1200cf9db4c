/**
 * What the developer is told before a browser opens on an upstream's sign-in page, from a
 * `gatehouse/authorize` request (no \`vscode\` here, so it is unit tested): the request is
 * validated, the URL checked again (https or loopback, no credentials, nothing a shell
 * could misread) and the server's title stripped to printable text.
 */
import { z } from 'zod';
import { checkAuthorizationUrl } from '../../common/net/authorizationUrl';

const AuthorizeSchema = z.strictObject({
  server: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  title: z.string().min(1).max(200),
  url: z.string().max(8192),
  issuer: z.url(),
  reason: z.enum(['sign-in', 'expired', 'step-up']),
});
/** What the developer is told and what would open, or an Error for a request to refuse. */
export function authorizationPrompt(params: unknown): { message: string; url: URL } {
  const parsed = AuthorizeSchema.safeParse(params);
  if (!parsed.success) throw new Error('gatehouse/authorize: malformed request');
  const { title, reason } = parsed.data;
  let url: URL;
  try {
    url = new URL(parsed.data.url);
  } catch {
    throw new Error('gatehouse/authorize: the sign-in URL is not a URL');
  }
  // The gateway matched it to the server's advertised endpoint; here: scheme and characters again.
  checkAuthorizationUrl(url, `${url.origin}${url.pathname}`);
  const host = new URL(parsed.data.issuer).host;
  const shownTitle = title.replace(/[^\p{L}\p{N}\p{P}\p{Zs}]/gu, '');
  const message = reason === 'step-up'
    ? `${shownTitle} needs more access than you gave it. Sign in at ${host} to allow it?`
    : reason === 'expired'
      ? `Your sign-in to ${shownTitle} has expired or was refused. Sign in again at ${host}?`
      : `${shownTitle} needs you to sign in at ${host}.`;
  return { message, url };
}

