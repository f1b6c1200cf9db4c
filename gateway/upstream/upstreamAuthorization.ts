/**
 * What an HTTP upstream transport asks about credentials, whatever holds them: the
 * policy server's relay (gateway/policy/relayTokens.ts) or the user's own OAuth tokens for
 * that server (gateway/upstreamAuth/). The transport never sees how a token was obtained.
 */
import { describeError } from '../../common/log/logger';

/** The server needs the user to sign in and nobody may be asked now (the gateway's own launch-time connection). */
export class SignInRequiredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignInRequiredError';
  }
}

/**
 * A request was refused for its credentials and none could be obtained (declined, refused,
 * nobody may be asked now): sending it again, or another request, would be refused too.
 * Carries the cause's words unchanged.
 */
export class UpstreamAuthorizationFailedError extends Error {
  constructor(cause: unknown) {
    super(describeError(cause), { cause });
    this.name = 'UpstreamAuthorizationFailedError';
  }
}

export interface UpstreamChallenge {
  /** 401 (no or bad token) or 403 (e.g. `insufficient_scope`). */
  status: number;
  /** The response's WWW-Authenticate header, if any. */
  wwwAuthenticate: string | undefined;
  /** The Authorization header the refused request carried (to tell a stale token from a bad one). */
  sentAuthorization: string | undefined;
  /**
   * Whether a person may be asked to sign in now: false for the connection the gateway opens
   * by itself at launch, true for one a client's request opened.
   */
  interactive: boolean;
}

export interface UpstreamAuthorization {
  /** The Authorization header for the next request, or undefined to send none. */
  header(): Promise<string | undefined>;
  /**
   * The upstream refused a request. Resolves true when new credentials were obtained and
   * the request is worth sending again; false when nothing can be done (the refusal is
   * then reported as it is); throws with words for the user when obtaining them failed.
   */
  challenged(challenge: UpstreamChallenge): Promise<boolean>;
  /** A request with the current credentials was accepted. */
  accepted(): void;
  /**
   * The DPoP proof (RFC 9449) to send with a request to `url` carrying `authorization` (what
   * `header()` gave, so a refresh in between cannot pair one token with another's proof).
   */
  proof?(method: string, url: string, authorization: string): Promise<string | undefined>;
  /** An answer carried a `DPoP-Nonce` header: proofs from now on carry it (RFC 9449 §9). */
  noteNonce?(nonce: string): void;
  /** How long a request may wait while a person signs in (longer than a handshake normally takes). */
  readonly flowTimeoutMs?: number;
}
