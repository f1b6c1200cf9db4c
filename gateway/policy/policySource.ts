/**
 * Where the gateway's policy comes from when an org policy server manages it: fetches the
 * signed bundle for this user, verifies it against the pinned key set, keeps the last good
 * one on disk (0600) for when the server is unreachable, follows the server's push stream
 * (new versions, revocations), and fails closed: no verified, unexpired bundle means every
 * call is denied with the reason.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { JSONWebKeySet } from 'jose';
import { createParser } from 'eventsource-parser';
import { request } from 'undici';
import { PolicyDecider } from '../../common/policy/policyDecider';
import { BUNDLE_CONTENT_TYPE, POLICY_SERVER_PATHS } from '../../common/policy/policyServerApi';
import { BundleRejectedError, verifyPolicyBundle, type BundleClaims } from '../../common/policy/policyBundle';
import { writePrivateFileAtomic } from '../../common/fs/privateFiles';
import { describeError, type Logger } from '../../common/log/logger';

export interface PolicySourceOptions {
  serverUrl: URL;
  /** The `iss` the bundles must carry (the policy server's public URL). */
  issuer: string;
  /** Pinned keys: bundles signed by anything else are refused. */
  keys: JSONWebKeySet;
  /** The signed-in user; a bundle for anyone else is refused. */
  expectedSub: string;
  /** The IdP session (`sid`) of the token, so revoking another session of the same user leaves this one alone. */
  sessionId?: string;
  /**
   * The user's IdP token, asked for on every request so a refreshed token is used;
   * `refused` when the policy server just answered 401 to the last one (renew it).
   */
  token: (options?: { refused?: boolean }) => Promise<string>;
  /** Last good bundle, kept for when the policy server is unreachable. */
  cachePath: string;
  log: Logger;
}

export interface PolicyState {
  decider?: PolicyDecider;
  version?: number;
  expiresAt?: number;
  /** Why every call is denied right now; undefined while a good bundle is in force. */
  denial?: string;
}

const RETRY_MIN_MS = 1_000;
/** A signed bundle for one user; far above any real one (10,000 servers is ~2.5 MB). */
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;
const RENEW_RETRY_MS = 10_000;
// Short, so a revocation published while the stream was down still lands within seconds.
const RETRY_MAX_MS = 5_000;

export class PolicySource {
  private current: PolicyState = { denial: 'No policy has been received from the policy server yet.' };
  private bundleText: string | undefined;
  private etag: string | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewAt = Number.POSITIVE_INFINITY;
  private readonly aborter = new AbortController();
  private readonly changeListeners = new Set<(state: PolicyState) => void>();
  private readonly revokeListeners = new Set<() => void>();
  private closed = false;
  private revoked = false;

  private readonly revokedMarkerPath: string;

  constructor(private readonly options: PolicySourceOptions) {
    this.revokedMarkerPath = `${options.cachePath}.revoked`;
  }

  /** The state in force, with expiry judged on the wall clock at every call (timers pause during sleep). */
  /** The signed-in user this gateway serves. */
  get subject(): string {
    return this.options.expectedSub;
  }

  get state(): PolicyState {
    const { expiresAt } = this.current;
    if (expiresAt !== undefined && this.current.decider && Date.now() >= expiresAt) this.expire();
    return this.current;
  }

  onChange(listener: (state: PolicyState) => void): void {
    this.changeListeners.add(listener);
  }

  onRevoked(listener: () => void): void {
    this.revokeListeners.add(listener);
  }

  /** Loads the cached bundle, tries the server once, then keeps the push stream open. */
  async start(): Promise<void> {
    await this.loadCache();
    await this.refresh().catch((error: unknown) =>
      this.options.log.warn('policy server unreachable; using the cached bundle if any', { error: describeError(error) }),
    );
    void this.followEvents();
  }

  close(): void {
    this.closed = true;
    this.aborter.abort();
    clearTimeout(this.expiryTimer);
    clearTimeout(this.renewTimer);
  }

  /**
   * Fetches the bundle (revalidating with ETag) and applies it if it verifies. A 401 (the
   * token expired or the IdP withdrew it) asks for a renewed token once and tries again;
   * with VS Code sign-in that renews the session, or asks the developer to sign in again.
   */
  async refresh(): Promise<void> {
    const fetchBundle = async (refused: boolean) =>
      request(this.endpoint(POLICY_SERVER_PATHS.effectivePolicy), {
        headers: {
          authorization: `Bearer ${await this.options.token(refused ? { refused } : undefined)}`,
          accept: BUNDLE_CONTENT_TYPE,
          ...(this.etag ? { 'if-none-match': this.etag } : {}),
        },
        signal: AbortSignal.any([this.aborter.signal, AbortSignal.timeout(10_000)]),
      });
    let response = await fetchBundle(false);
    if (response.statusCode === 401) {
      await response.body.dump();
      this.options.log.warn('the policy server refused the token (401); asking for a renewed one');
      response = await fetchBundle(true);
    }
    if (response.statusCode === 304) {
      await response.body.dump();
      // Unchanged, but if ours is past half-life keep asking: the server's ETag moves on soon.
      const { expiresAt } = this.current;
      if (expiresAt !== undefined && Date.now() >= this.renewAt) {
        this.scheduleRenewal(Date.now() + Math.min(RENEW_RETRY_MS, Math.max(500, (expiresAt - Date.now()) / 4)));
      }
      return;
    }
    const text = await readBounded(response.body, MAX_BUNDLE_BYTES);
    if (response.statusCode === 403 && /revoked/i.test(text)) return this.revoke();
    if (response.statusCode !== 200) throw new Error(`policy server answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
    const etag = response.headers.etag;
    await this.apply(text.trim(), 'server');
    if (typeof etag === 'string') this.etag = etag;
  }

  private async apply(jws: string, from: 'server' | 'cache'): Promise<void> {
    let claims: BundleClaims;
    try {
      claims = await verifyPolicyBundle(jws, this.options.keys, { sub: this.options.expectedSub, issuer: this.options.issuer });
    } catch (error) {
      const reason = error instanceof BundleRejectedError ? error.reason : describeError(error);
      this.options.log.error('policy bundle rejected', { from, reason });
      // A bad bundle from the server never replaces a good one in force; a bad cache is ignored.
      if (from === 'server' && !this.current.decider)
        this.set({
          denial: `The policy bundle was rejected: ${reason}. Calls are denied until a valid policy arrives; tell your policy admin.`,
        });
      return;
    }
    if (this.current.version !== undefined && claims.ver < this.current.version && this.current.decider) return;
    if (from === 'cache' && existsSync(this.revokedMarkerPath)) {
      this.options.log.warn('ignoring the cached bundle: access was revoked; waiting for the policy server');
      return;
    }
    let decider: PolicyDecider;
    try {
      decider = new PolicyDecider(claims.policy);
    } catch (error) {
      this.options.log.error('policy bundle unusable', { from, error: describeError(error) });
      return;
    }
    this.bundleText = jws;
    this.revoked = false;
    if (from === 'server') {
      rmSync(this.revokedMarkerPath, { force: true }); // a fresh bundle from the server means access is back
    }
    clearTimeout(this.expiryTimer);
    const expiresAt = claims.exp * 1000;
    this.expiryTimer = setTimeout(() => this.expire(), Math.max(0, expiresAt - Date.now()));
    this.expiryTimer.unref();
    // Renew at half-life, so a quiet policy never lapses while the server is reachable.
    this.renewAt = claims.iat * 1000 + (expiresAt - claims.iat * 1000) / 2;
    this.scheduleRenewal(this.renewAt);
    this.set({ decider, version: claims.ver, expiresAt });
    this.options.log.info('policy in force', {
      version: claims.ver,
      from,
      groups: claims.groups,
      expiresAt: new Date(expiresAt).toISOString(),
    });
    // Cache after the policy is in force: a full disk must not keep an older policy alive.
    if (from === 'server') {
      try {
        writePrivateFileAtomic(this.options.cachePath, `${jws}\n`);
      } catch (error) {
        this.options.log.warn('could not cache the policy bundle', { error: describeError(error) });
      }
    }
  }

  private scheduleRenewal(at: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(
      () => {
        this.refresh().catch((error: unknown) => {
          this.options.log.warn('policy renewal failed; retrying', { error: describeError(error) });
          if (!this.closed) this.scheduleRenewal(Date.now() + RENEW_RETRY_MS);
        });
      },
      Math.max(0, at - Date.now()),
    );
    this.renewTimer.unref();
  }

  private expire(): void {
    if (!this.current.expiresAt || !this.current.decider) return;
    if (Date.now() < this.current.expiresAt) {
      // The timer fired early by the wall clock (clock stepped back): check again later.
      clearTimeout(this.expiryTimer);
      this.expiryTimer = setTimeout(() => this.expire(), Math.min(this.current.expiresAt - Date.now(), 60_000));
      this.expiryTimer.unref();
      return;
    }
    this.set({
      denial: `The policy bundle expired at ${new Date(this.current.expiresAt).toISOString()} and the policy server could not be reached for a new one. Calls are denied until it can.`,
      expiresAt: this.current.expiresAt,
    });
    void this.refresh().catch(() => undefined);
  }

  private revoke(): void {
    if (this.revoked) return;
    this.revoked = true;
    clearTimeout(this.expiryTimer);
    this.bundleText = undefined;
    // Forget the bundle on disk and remember the revocation, so a restart while the server
    // is unreachable cannot bring the revoked policy back.
    rmSync(this.options.cachePath, { force: true });
    try {
      writePrivateFileAtomic(this.revokedMarkerPath, JSON.stringify({ sub: this.options.expectedSub, revokedAt: Date.now() }) + '\n');
    } catch (error) {
      this.options.log.warn('could not record the revocation on disk', { error: describeError(error) });
    }
    this.set({ denial: 'Your access was revoked by your policy admin.' });
    for (const listener of this.revokeListeners) listener();
  }

  private set(state: PolicyState): void {
    this.current = state;
    for (const listener of this.changeListeners) listener(state);
  }

  private async loadCache(): Promise<void> {
    let text: string;
    try {
      text = readFileSync(this.options.cachePath, 'utf8').trim();
    } catch {
      return;
    }
    await this.apply(text, 'cache');
  }

  /** Holds the server's push stream open, reconnecting with backoff; refetches on news. */
  private async followEvents(): Promise<void> {
    let delay = RETRY_MIN_MS;
    while (!this.closed) {
      try {
        const response = await request(this.endpoint(POLICY_SERVER_PATHS.events), {
          headers: { authorization: `Bearer ${await this.options.token()}`, accept: 'text/event-stream' },
          signal: this.aborter.signal,
          bodyTimeout: 60_000, // the server sends a heartbeat every 15 s
        });
        if (response.statusCode === 403) {
          await response.body.dump();
          this.revoke();
        } else if (response.statusCode !== 200) {
          await response.body.dump();
          throw new Error(`push stream refused with HTTP ${response.statusCode}`);
        } else {
          delay = RETRY_MIN_MS;
          // Catch up on anything missed while disconnected.
          await this.refresh().catch((error: unknown) => this.options.log.warn('policy refresh failed', { error: describeError(error) }));
          // A bounded buffer: a lying server cannot grow our memory with one endless line.
          const parser = createParser({ onEvent: (event) => this.onEvent(event.event, event.data), maxBufferSize: 64 * 1024 });
          for await (const chunk of response.body) parser.feed(chunk.toString());
        }
      } catch (error) {
        if (this.closed) return;
        this.options.log.warn('policy push stream lost; retrying', { error: describeError(error), retryMs: delay });
      }
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  private onEvent(type: string | undefined, data: string): void {
    let payload: { version?: number; sub?: string; sessionId?: string };
    try {
      payload = JSON.parse(data) as typeof payload;
    } catch {
      return;
    }
    if (type === 'revoked' && payload.sub === this.options.expectedSub) {
      if (payload.sessionId !== undefined && payload.sessionId !== this.options.sessionId) return;
      return this.revoke();
    }
    // A revoked stored credential is listed in the user's next bundle: fetch it now.
    const credentialRevoked = type === 'credential-revoked' && payload.sub === this.options.expectedSub;
    if (credentialRevoked || (type === 'policy' && (payload.version === undefined || payload.version !== this.current.version))) {
      void this.refresh().catch((error: unknown) => this.options.log.warn('policy refresh failed', { error: describeError(error) }));
    }
  }

  /** An API path under the configured server URL, keeping any base path it has. */
  private endpoint(path: string): URL {
    const base = this.options.serverUrl.href.endsWith('/') ? this.options.serverUrl.href : `${this.options.serverUrl.href}/`;
    return new URL(path.replace(/^\//, ''), base);
  }

  /** The bundle in force (for the extension to show); never a secret, but not logged either. */
  get bundle(): string | undefined {
    return this.bundleText;
  }
}

async function readBounded(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new Error(`policy server answer exceeds ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
