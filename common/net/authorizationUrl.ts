/**
 * The one check every authorization URL passes before anything opens it (the extension's
 * own sign-in and the gateway's upstream OAuth): https (http only on loopback), exactly the
 * authorization server's advertised endpoint, nothing a shell could read as more than a
 * URL. `javascript:`, `file:`, `data:` and friends fail the first test; metacharacters in
 * the origin or path (the CVE-2025-6514 class) fail the last. Such a URL is only ever
 * opened (`vscode.env.openExternal`), never run.
 */
import { isSecureOrLoopback } from './loopback';

export class AuthorizationUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthorizationUrlError';
  }
}

/** Throws AuthorizationUrlError unless `url` is a safe URL on `endpoint` (the metadata's authorization_endpoint). */
export function checkAuthorizationUrl(url: URL, endpoint: string | undefined): void {
  if (!isSecureOrLoopback(url))
    throw new AuthorizationUrlError(`The authorization endpoint is not https (${url.protocol}); refusing to open it.`);
  let expected: URL;
  try {
    expected = new URL(endpoint ?? '');
  } catch {
    throw new AuthorizationUrlError('The authorization server advertises no valid authorization endpoint; refusing to open it.');
  }
  if (`${url.origin}${url.pathname}` !== `${expected.origin}${expected.pathname}`) {
    throw new AuthorizationUrlError("The authorization URL is not the authorization server's endpoint; refusing to open it.");
  }
  if (url.username || url.password) throw new AuthorizationUrlError('The authorization URL carries credentials; refusing to open it.');
  if (/[\s"'`$;|&<>\\]/.test(`${url.origin}${url.pathname}`))
    throw new AuthorizationUrlError('The authorization URL has characters no endpoint has; refusing to open it.');
}
