/**
 * Credential mode `user-oauth`: the gateway is the OAuth client of one upstream, on the
 * user's behalf. It presents the user's stored access token; on a 401 it refreshes it or,
 * if it must, runs an authorization (code + PKCE S256, loopback redirect) in which the
 * user signs in at the server's authorization server; on a 403 `insufficient_scope` it
 * asks for the scopes already granted plus the challenge's (step-up). Concurrent requests
 * that meet the same refusal share one flow; a server that keeps refusing after three
 * flows with no request accepted in between gets no fourth until the user signs in again.
 * The token goes only to this upstream: VS Code, the model and the audit never see it,
 * and no client token is ever forwarded (the transport sends only what `header()` gives).
 * Where both the authorization server and the resource take DPoP (RFC 9449), tokens are
 * bound to a key kept with them and every request carries a fresh proof (dpopProver.ts).
 */
import { randomBytes } from 'node:crypto';
import { auth, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { listenForRedirect } from '../../common/net/loopbackRedirect';
import type { Logger } from '../../common/log/logger';
import type { UpstreamSignInStatus } from '../../common/control/controlProtocol';
import { SignInRequiredError, type UpstreamAuthorization, type UpstreamChallenge } from '../upstream/upstreamAuthorization';
import type { AuthorizationOpener, AuthorizationRequest } from './authorizationOpener';
import { isDpopBound, tokensFor, type StoredUpstreamCredentials, type UpstreamCredentialStore } from './credentialStore';
import { DpopProver, newDpopKey, offersDpop, resourceTakesDpop } from './dpopProver';
import { challengeParams, FlowProvider, restrictedOAuthFetch, UpstreamOAuthError, type PreRegisteredClient } from './flowProvider';

/** Flows without an accepted request in between before the gateway stops asking. */
export const MAX_FLOWS_WITHOUT_SUCCESS = 3;
const DEFAULT_FLOW_TIMEOUT_MS = 5 * 60_000;

export interface UpstreamOAuthSettings {
  serverId: string;
  serverTitle: string;
  /** The MCP endpoint: the protected resource. */
  serverUrl: URL;
  scopes?: string[];
  preRegistered?: PreRegisteredClient;
  clientMetadataUrl?: string;
  store: UpstreamCredentialStore;
  storeKey: string;
  opener: AuthorizationOpener;
  log: Logger;
  flowTimeoutMs?: number;
}

export class UpstreamOAuth implements UpstreamAuthorization {
  private record: StoredUpstreamCredentials | undefined;
  /** Bumped by `forget`: what a flow started before it obtains is not kept. */
  private generation = 0;
  private flow: Promise<void> | undefined;
  private flowsWithoutSuccess = 0;
  private readonly prover = new DpopProver();
  /** A resource supplied a nonce not used yet (RFC 9449 §9): one `use_dpop_nonce` refusal is worth a retry. */
  private newNonce = false;

  constructor(private readonly settings: UpstreamOAuthSettings) {}

  /** Every OAuth request of a flow: https, or loopback for a loopback server, no redirects (flowProvider.ts). */
  private readonly oauthFetch: FetchLike = (url, init) => restrictedOAuthFetch(this.settings.serverUrl)(url, init);

  /** How long a request may wait for the user to finish signing in. */
  get flowTimeoutMs(): number {
    return this.settings.flowTimeoutMs ?? DEFAULT_FLOW_TIMEOUT_MS;
  }

  async header(): Promise<string | undefined> {
    const record = await this.load();
    // Only to the URL it was obtained for: a catalog entry moved elsewhere signs in again.
    const tokens = tokensFor(record, this.settings.serverUrl.href);
    if (!tokens?.access_token) return undefined;
    if (!isDpopBound(tokens)) return `Bearer ${tokens.access_token}`;
    return record.dpopKey ? `DPoP ${tokens.access_token}` : undefined; // bound to a key that is gone: sign in again
  }

  async proof(method: string, url: string, authorization: string): Promise<string | undefined> {
    if (!authorization.startsWith('DPoP ')) return undefined;
    const { dpopKey } = await this.load(); // one key per server, kept across refreshes
    return dpopKey ? this.prover.proof(dpopKey, method, url, authorization.slice('DPoP '.length)) : undefined;
  }

  noteNonce(nonce: string): void {
    if (this.prover.noteNonce(this.settings.serverUrl.href, nonce)) this.newNonce = true;
  }

  accepted(): void {
    this.flowsWithoutSuccess = 0;
  }

  async challenged(challenge: UpstreamChallenge): Promise<boolean> {
    const params = challengeParams(challenge.wwwAuthenticate);
    // RFC 9449 §9: the server wants its nonce in the proof (the transport noted it): send again, no new sign-in.
    if (challenge.status === 401 && params.error === 'use_dpop_nonce') {
      const retry = this.newNonce && challenge.sentAuthorization?.startsWith('DPoP ') === true;
      this.newNonce = false; // a refusal with no new nonce is final: the same proof would be refused again
      return retry;
    }
    if (challenge.status === 403 && params.error !== 'insufficient_scope') return false;
    // Another request's flow finished (or is running) since this one was sent: use its result.
    if (this.flow) return this.flow.then(() => true);
    if (challenge.sentAuthorization !== (await this.header())) return true;
    const started = this.flow as Promise<void> | undefined; // one may have started while this one read the store
    if (started) return started.then(() => true);
    if (this.flowsWithoutSuccess >= MAX_FLOWS_WITHOUT_SUCCESS) {
      throw new UpstreamOAuthError(
        `${this.settings.serverTitle} still refuses access after ${MAX_FLOWS_WITHOUT_SUCCESS} sign-ins; ask its owner for the access you need, then sign out of it in Gatehouse Scopes and use it again`,
      );
    }
    const flow: Promise<void> = this.authorize(challenge, params).finally(() => {
      if (this.flow === flow) this.flow = undefined;
    });
    this.flow = flow;
    await flow;
    return true;
  }

  /** Facts about the kept sign-in, for the Scopes view (never the token). */
  async status(): Promise<UpstreamSignInStatus> {
    const tokens = tokensFor(await this.load(), this.settings.serverUrl.href);
    const expiresAt =
      tokens?.expires_in !== undefined && tokens.obtainedAt !== undefined
        ? new Date(tokens.obtainedAt + tokens.expires_in * 1000).toISOString()
        : undefined;
    return {
      server: this.settings.serverId,
      signedIn: Boolean(tokens?.access_token),
      ...(tokens?.issuer ? { issuer: tokens.issuer } : {}),
      ...(tokens?.scope ? { scopes: tokens.scope.split(' ').filter(Boolean) } : {}),
      ...(expiresAt ? { expiresAt } : {}),
    };
  }

  /** The user signs out of this server (or an admin revoked it): tokens and registration are forgotten. */
  async forget(): Promise<void> {
    this.record = {};
    this.generation++; // a flow still running must not write its result back
    this.flowsWithoutSuccess = 0;
    await this.settings.store.delete(this.settings.storeKey);
  }

  /** Forgets the credentials if their tokens were obtained before `time` (ms); true when something was deleted. */
  async forgetIfObtainedBefore(time: number): Promise<boolean> {
    const tokens = (await this.load()).tokens;
    // No time on record, or an unreadable revocation time: deny when unsure, delete.
    const signedInAt = tokens?.signedInAt ?? tokens?.obtainedAt;
    if (!tokens || (signedInAt !== undefined && Number.isFinite(time) && signedInAt > time)) return false;
    await this.forget();
    return true;
  }

  private async load(): Promise<StoredUpstreamCredentials> {
    this.record ??= (await this.settings.store.get(this.settings.storeKey)) ?? {};
    return this.record;
  }

  private async authorize(challenge: UpstreamChallenge, params: ReturnType<typeof extractWWWAuthenticateParams>): Promise<void> {
    const { settings } = this;
    const { status, interactive } = challenge;
    const kept = await this.load();
    const generation = this.generation;
    // The flow works on a copy: a flow that fails (declined, refused) leaves the kept tokens as they were.
    const stored: StoredUpstreamCredentials = { ...kept };
    let scope = params.scope;
    let reason: AuthorizationRequest['reason'] = kept.tokens ? 'expired' : 'sign-in';
    if (status === 403) {
      // More access: what was granted plus what the server asks for. A refresh cannot widen
      // scopes, so the new authorization does not start from the old tokens.
      scope = union(kept.tokens?.scope, params.scope);
      delete stored.tokens;
      reason = 'step-up';
    }
    const state = randomBytes(32).toString('base64url');
    const redirect = await listenForRedirect(
      state,
      {
        done: `You are signed in to ${settings.serverTitle}.`,
        failed: `Signing in to ${settings.serverTitle} was not completed.`,
        timedOut: () => new UpstreamOAuthError(`Signing in to ${settings.serverTitle} was not finished in the browser in time.`),
        cancelled: () => new UpstreamOAuthError(`Signing in to ${settings.serverTitle} was cancelled.`),
      },
      registeredPort(stored),
    );
    try {
      const provider = new FlowProvider({
        serverTitle: settings.serverTitle,
        redirectUri: redirect.redirectUri,
        state,
        ...(settings.scopes ? { scopes: settings.scopes } : {}),
        ...(scope ? { requestedScope: scope } : {}),
        ...(settings.preRegistered ? { preRegistered: settings.preRegistered } : {}),
        ...(settings.clientMetadataUrl ? { clientMetadataUrl: settings.clientMetadataUrl } : {}),
        stored,
        serverUrl: settings.serverUrl.href,
        save: async (record) => {
          if (generation !== this.generation)
            throw new UpstreamOAuthError(`You were signed out of ${settings.serverTitle} while signing in; sign in again.`);
          // Until the new tokens arrive the kept ones stay: a declined step-up loses nothing.
          await this.save(record.tokens === undefined && kept.tokens !== undefined ? { ...record, tokens: kept.tokens } : record);
        },
        redirect: async (url, metadata) => {
          if (!interactive)
            throw new SignInRequiredError(`${settings.serverTitle} needs you to sign in; you will be asked when you first use it`);
          this.flowsWithoutSuccess++;
          await settings.opener.open({
            serverId: settings.serverId,
            serverTitle: settings.serverTitle,
            url,
            issuer: metadata.issuer,
            reason,
            redirectUri: redirect.redirectUri,
          });
        },
      });
      // The challenge may only point at metadata on the server's own origin (else the well-known paths are used):
      // an upstream must not make the gateway fetch arbitrary URLs.
      const metadataUrl = params.resourceMetadataUrl?.origin === settings.serverUrl.origin ? params.resourceMetadataUrl : undefined;
      const options = {
        serverUrl: settings.serverUrl,
        ...(scope ? { scope } : {}),
        ...(metadataUrl ? { resourceMetadataUrl: metadataUrl } : {}),
        fetchFn: this.tokenRequestsWithDpop(provider, stored, challenge.wwwAuthenticate),
      };
      if ((await auth(provider, options)) === 'AUTHORIZED') {
        settings.log.info('upstream token refreshed', { server: settings.serverId });
        return;
      }
      const code = provider.codeFrom(await redirect.answer(this.flowTimeoutMs));
      await auth(provider, { ...options, authorizationCode: code });
      settings.log.info('signed in to upstream', {
        server: settings.serverId,
        issuer: provider.metadata?.issuer,
        ...(scope ? { scope } : {}),
      });
    } finally {
      redirect.close();
    }
  }

  /**
   * The flow's fetch: where DPoP is used (both servers take it, or the kept tokens are already
   * bound), each token request (code or refresh) carries a proof of the key kept with the
   * tokens (made now if there is none), and one refused with `use_dpop_nonce` is sent once
   * more with the server's nonce (RFC 9449 §8).
   */
  private tokenRequestsWithDpop(provider: FlowProvider, stored: StoredUpstreamCredentials, wwwAuthenticate: string | undefined): FetchLike {
    return async (url, init) => {
      const target = String(url instanceof Request ? url.url : url);
      const metadata = provider.metadata;
      const dpop = offersDpop(metadata) && (stored.dpopKey !== undefined || resourceTakesDpop(provider.resourceMetadata, wwwAuthenticate));
      if (!metadata || !dpop || init?.method !== 'POST' || target !== metadata.token_endpoint) return this.oauthFetch(url, init);
      const key = (stored.dpopKey ??= await newDpopKey());
      const send = async () => {
        const headers = new Headers(init.headers);
        headers.set('dpop', await this.prover.proof(key, 'POST', target));
        return this.oauthFetch(url, { ...init, headers });
      };
      const response = await send();
      if (response.status !== 400 || !this.prover.noteNonce(target, response.headers.get('dpop-nonce'))) return response;
      const error = (await response
        .clone()
        .json()
        .catch(() => undefined)) as { error?: unknown } | undefined;
      return error?.error === 'use_dpop_nonce' ? send() : response;
    };
  }

  private async save(record: StoredUpstreamCredentials): Promise<void> {
    this.record = record;
    await this.settings.store.set(this.settings.storeKey, record);
  }
}

/** The loopback port a registered client's redirect URI names, so the same URI is used again (refresh and sign-in). */
function registeredPort(stored: StoredUpstreamCredentials): number {
  const uris =
    stored.client && 'redirect_uris' in stored.client && Array.isArray(stored.client.redirect_uris) ? stored.client.redirect_uris : [];
  for (const uri of uris) {
    const match = /^http:\/\/127\.0\.0\.1:(\d{2,5})\/callback$/.exec(String(uri));
    if (match && Number(match[1]) >= 1024 && Number(match[1]) <= 65535) return Number(match[1]);
  }
  return 0;
}

function union(...lists: Array<string | undefined>): string | undefined {
  const scopes = new Set(lists.flatMap((list) => (list ? list.split(' ').filter(Boolean) : [])));
  return scopes.size ? [...scopes].join(' ') : undefined;
}
