/**
 * How the gateway proves who it acts for at the policy server's relay. When the policy
 * server is an MCP authorization server offering token exchange and DPoP, the gateway
 * exchanges the person's IdP token there (RFC 8693, policy-server/authorization/
 * gatewayTokenExchange.ts) for a relay token per relay server, bound to a key the gateway
 * made at launch and holds in memory only (RFC 9449), and proves that key on every request:
 * a relay token copied out of a proxy's log, a crash dump or the upstream's hands is useless.
 * A policy server that offers no such exchange (an older one, or one that is no
 * authorization server) gets the IdP token as a Bearer token, as before; so does any
 * relay when the person's token is not a JWT (GitHub), which the exchange does not take.
 *
 * Tokens are kept per relay server until a minute before they expire, obtained once for
 * concurrent requests, and exchanged anew once when the relay refuses one.
 */
import { decodeJwt, type JWK } from 'jose';
import * as oauth from 'openid-client';
import type { Logger } from '../../common/log/logger';
import { ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../common/oauth/identityAssertion';
import { oauthRefusal } from '../../common/oauth/oauthRefusal';
import { isSecureOrLoopback } from '../../common/net/loopback';
import { GATEWAY_CLIENT_ID, POLICY_SERVER_PATHS } from '../../common/policy/policyServerApi';
import { challengeParams } from '../upstreamAuth/flowProvider';
import { DpopProver, newDpopKeyPair, offersDpop } from '../upstreamAuth/dpopProver';
import type { UpstreamAuthorization, UpstreamChallenge } from '../upstream/upstreamAuthorization';

const REQUEST_TIMEOUT_SECONDS = 10;
/** A token this close to its expiry is exchanged anew before use (clocks differ, requests take time). */
const RENEW_BEFORE_MS = 60_000;
/** How long a policy server that offers no key-bound tokens is taken at its word before it is asked again. */
const RECHECK_BEARER_MS = 10 * 60_000;

/** How relayed (`shared-key`, `relay-oauth`) servers are reached: the policy server's relay, and what proves who calls. */
export interface RelayAccess {
  policyServerUrl: URL;
  /** The credentials for one relay server (the same object for the same server, so its token outlives a policy update). */
  authorizationFor(serverId: string, relayUrl: string): UpstreamAuthorization;
}

/** A relay token, for whom it was obtained (a new sign-in as someone else must not use it), and when to renew it. */
interface KeptToken {
  value: string;
  subject: string;
  renewAt: number;
}

type Exchange = { kind: 'bearer' } | { kind: 'dpop'; server: oauth.Configuration; handle: oauth.DPoPHandle; key: JWK };

export class RelayTokens implements RelayAccess {
  private exchange: { answer: Promise<Exchange>; until: number } | undefined;
  private readonly prover = new DpopProver();
  private readonly servers = new Map<string, UpstreamAuthorization>();

  constructor(
    readonly policyServerUrl: URL,
    private readonly userToken: () => Promise<string>,
    private readonly log: Logger,
  ) {}

  authorizationFor(serverId: string, relayUrl: string): UpstreamAuthorization {
    let authorization = this.servers.get(serverId);
    if (!authorization) {
      authorization = this.relayServer(relayUrl);
      this.servers.set(serverId, authorization);
    }
    return authorization;
  }

  /** One relay server's credentials: its kept token, obtained on first use. */
  private relayServer(relayUrl: string): UpstreamAuthorization {
    let token: KeptToken | undefined;
    /** The exchange in flight, for whom (a request for someone else does not wait for it). */
    let obtaining: { subject: string; value: Promise<string> } | undefined;
    /** The last token the relay refused, and whether the one obtained after it was refused too. */
    let refused: string | undefined;
    let renewedAfterRefusal = false;
    let newNonce = false;
    const obtain = (subjectToken: string, subject: string, exchange: Extract<Exchange, { kind: 'dpop' }>): Promise<string> => {
      if (obtaining && obtaining.subject === subject) return obtaining.value;
      const value = this.exchanged(subjectToken, subject, exchange, relayUrl)
        .then((answer) => {
          token = answer;
          return answer.value;
        })
        .finally(() => {
          if (obtaining?.value === value) obtaining = undefined;
        });
      obtaining = { subject, value };
      return value;
    };
    return {
      header: async () => {
        const subjectToken = await this.userToken();
        // Read once per request (not verified: the policy server verifies); no JWT, no exchange.
        const subject = subjectOf(subjectToken);
        const exchange = subject !== undefined ? await this.exchangeOffered() : { kind: 'bearer' as const };
        if (subject === undefined || exchange.kind === 'bearer') return `Bearer ${subjectToken}`;
        const usable = token && token.renewAt > Date.now() && token.subject === subject;
        const value = usable ? token!.value : await obtain(subjectToken, subject, exchange);
        return `DPoP ${value}`;
      },
      proof: async (method, url, authorization) => {
        if (!authorization.startsWith('DPoP ')) return undefined;
        const exchange = await this.exchangeOffered();
        if (exchange.kind !== 'dpop') return undefined;
        return this.prover.proof(exchange.key, method, url, authorization.slice('DPoP '.length));
      },
      noteNonce: (nonce) => {
        if (this.prover.noteNonce(relayUrl, nonce)) newNonce = true;
      },
      accepted: () => {
        renewedAfterRefusal = false;
      },
      challenged: async (challenge: UpstreamChallenge) => {
        if (challenge.status !== 401 || !challenge.sentAuthorization?.startsWith('DPoP ')) return false;
        // RFC 9449 §9: the relay wants its nonce in the proof (noted above): the same token, sent again.
        if (challengeParams(challenge.wwwAuthenticate).error === 'use_dpop_nonce') {
          const retry = newNonce;
          newNonce = false;
          return retry;
        }
        const sent = challenge.sentAuthorization.slice('DPoP '.length);
        // Another request already dropped this token, is obtaining a new one, or has one: the retry uses it.
        if (sent === refused || obtaining || (token && sent !== token.value)) return true;
        // Exchanged anew once (the server restarted with a new key, an admin restored the person); twice would
        // loop, so this request fails, and the refused token is not kept: the next request exchanges again.
        if (renewedAfterRefusal) {
          token = undefined;
          return false;
        }
        renewedAfterRefusal = true;
        refused = sent;
        token = undefined;
        this.log.info('the relay refused its token; exchanging anew', { relay: relayUrl });
        return true;
      },
    };
  }

  /**
   * Whether the policy server exchanges IdP tokens for DPoP-bound relay tokens. Asked once
   * per process when it does; when it does not, asked again after a while (it may be
   * upgraded while gateways run); when it cannot be told (unreachable, an error answer),
   * asked again on the next request, and the request fails meanwhile.
   */
  private exchangeOffered(): Promise<Exchange> {
    if (this.exchange && this.exchange.until <= Date.now()) this.exchange = undefined;
    if (!this.exchange) {
      const answer = this.discover().then(
        (exchange) => {
          if (exchange.kind === 'bearer' && this.exchange?.answer === answer) this.exchange.until = Date.now() + RECHECK_BEARER_MS;
          return exchange;
        },
        (error: unknown) => {
          if (this.exchange?.answer === answer) this.exchange = undefined;
          throw error;
        },
      );
      this.exchange = { answer, until: Infinity };
    }
    return this.exchange.answer;
  }

  private async discover(): Promise<Exchange> {
    const issuer = new URL(`${this.policyServerUrl.href.replace(/\/$/, '')}${POLICY_SERVER_PATHS.authorization}`);
    const metadataUrl = new URL(`/.well-known/oauth-authorization-server${issuer.pathname}`, issuer);
    const response = await fetch(metadataUrl, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_SECONDS * 1000), redirect: 'error' });
    // Only a clear "there is none" (404, or a proxy in front refusing the unknown path outright) means
    // the IdP token; a failing server is asked again, never taken as an answer.
    if ([401, 403, 404, 405, 410].includes(response.status)) {
      return this.bearer(`the policy server is no authorization server (its metadata answered HTTP ${response.status})`);
    }
    if (!response.ok) throw new Error(`the policy server's authorization server metadata answered HTTP ${response.status}`);
    const metadata = (await response.json()) as oauth.ServerMetadata;
    const grants = metadata.grant_types_supported;
    if (!Array.isArray(grants) || !grants.includes(TOKEN_EXCHANGE_GRANT) || !offersDpop(metadata)) {
      return this.bearer('the policy server offers no key-bound relay tokens');
    }
    // RFC 8414 §3.3: the issuer must be the one asked. Reached by another name than its public
    // URL, the policy server cannot issue tokens for the relay URLs the gateway uses.
    if (metadata.issuer !== issuer.href) {
      return this.bearer(
        `the policy server's authorization server is ${String(metadata.issuer)}, not ${issuer.href}: give the gateway the policy server's public URL (its --issuer-url) for key-bound relay tokens`,
        'warn',
      );
    }
    if (!metadata.token_endpoint || !isSecureOrLoopback(new URL(metadata.token_endpoint))) {
      throw new Error("the policy server's token endpoint is not https");
    }
    const server = new oauth.Configuration(metadata, GATEWAY_CLIENT_ID, undefined, oauth.None());
    server.timeout = REQUEST_TIMEOUT_SECONDS;
    if (issuer.protocol === 'http:') oauth.allowInsecureRequests(server); // a policy server on this machine (the gateway's args allow no other http)
    // The key lives in this process only; a restart makes a new one (and exchanges anew).
    const { jwk: key, keyPair } = await newDpopKeyPair();
    this.log.info('relay tokens are bound to a key held in memory (DPoP)', { issuer: issuer.href });
    return { kind: 'dpop', server, handle: oauth.getDPoPHandle(server, keyPair), key };
  }

  private bearer(reason: string, level: 'info' | 'warn' = 'info'): Exchange {
    this.log[level](`${reason}; the relay gets the IdP token`);
    return { kind: 'bearer' };
  }

  private async exchanged(
    subjectToken: string,
    subject: string,
    exchange: Extract<Exchange, { kind: 'dpop' }>,
    relayUrl: string,
  ): Promise<KeptToken> {
    let answer: oauth.TokenEndpointResponse;
    try {
      answer = await oauth.genericGrantRequest(
        exchange.server,
        TOKEN_EXCHANGE_GRANT,
        { subject_token: subjectToken, subject_token_type: JWT_TOKEN_TYPE, requested_token_type: ACCESS_TOKEN_TYPE, resource: relayUrl },
        { DPoP: exchange.handle },
      );
    } catch (error) {
      this.log.warn('the policy server refused a relay token', { relay: relayUrl, refusal: oauthRefusal(error) });
      throw new Error(`the policy server gave no relay token for ${relayUrl} (${oauthRefusal(error)})`, { cause: error });
    }
    if (answer.token_type.toLowerCase() !== 'dpop') {
      throw new Error(`the policy server gave a ${answer.token_type} relay token, not one bound to the gateway's key`);
    }
    const lifetimeMs = (answer.expires_in ?? 0) * 1000;
    return {
      value: answer.access_token,
      subject,
      renewAt: Date.now() + Math.max(lifetimeMs / 2, lifetimeMs - RENEW_BEFORE_MS),
    };
  }
}

/** The `sub` of a JWT ('' when it has none), or undefined for anything that is not a JWT. */
function subjectOf(token: string): string | undefined {
  try {
    return decodeJwt(token).sub ?? '';
  } catch {
    return undefined;
  }
}
