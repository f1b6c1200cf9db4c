/**
 * Who takes the user to an upstream's authorization page. With the extension: it asks the
 * user in words ("<server> needs you to sign in at <host>") and opens the checked URL with
 * `vscode.env.openExternal` (gateway/control/). Headless, for tests only: the gateway
 * follows the authorization server's redirect itself, which works only with servers that
 * answer without a login page (the conformance suite's); refused unless the gateway was
 * started with `--test-headless-oauth`, and never in managed mode.
 */
import { request } from 'undici';
import { isSecureOrLoopback } from '../../common/net/loopback';

export interface AuthorizationRequest {
  serverId: string;
  serverTitle: string;
  /** Already checked: the authorization server's own endpoint, https or loopback. */
  url: URL;
  /** The authorization server's issuer, for the words shown to the user. */
  issuer: string;
  /** Why the user is asked: first use, an expired or refused sign-in, or more access needed. */
  reason: 'sign-in' | 'expired' | 'step-up';
  /** Where the authorization server sends the browser back (this flow's loopback listener). */
  redirectUri: string;
}

export interface AuthorizationOpener {
  /** Resolves once the user was sent to `url`; rejects (with words) if they declined. */
  open(request: AuthorizationRequest): Promise<void>;
}

const MAX_HEADLESS_HOPS = 5;

/** Follows redirects from the authorization endpoint until one lands on our loopback redirect URI. */
export class HeadlessOpener implements AuthorizationOpener {
  async open({ url, redirectUri }: AuthorizationRequest): Promise<void> {
    let next = url;
    for (let hop = 0; hop < MAX_HEADLESS_HOPS; hop++) {
      if (!isSecureOrLoopback(next)) throw new Error(`headless authorization refuses to follow ${next.protocol} URLs`);
      const response = await request(next, { method: 'GET', signal: AbortSignal.timeout(10_000) });
      await response.body.dump();
      const location = response.headers.location;
      if (response.statusCode < 300 || response.statusCode >= 400 || typeof location !== 'string') {
        throw new Error(
          `headless authorization got HTTP ${response.statusCode} without a redirect (the server wants a person at a browser)`,
        );
      }
      next = new URL(location, next);
      if (`${next.origin}${next.pathname}` === redirectUri) {
        // The browser's last step: deliver the answer to the loopback redirect.
        const delivered = await request(next, { method: 'GET', signal: AbortSignal.timeout(10_000) });
        await delivered.body.dump();
        return;
      }
    }
    throw new Error('headless authorization: too many redirects');
  }
}
