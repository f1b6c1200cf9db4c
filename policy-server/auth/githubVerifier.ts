/**
 * Verifies GitHub tokens (opaque, so only GitHub can say whose they are) by asking the GitHub
 * API who the token belongs to and which orgs and teams that user is in. Answers are cached
 * briefly under a hash of the token, so a busy client does not spend the user's rate limit.
 */
import { createHash } from 'node:crypto';
import { request } from 'undici';
import type { CallerIdentity } from '../../common/policy/identity';
import { requireSecureUrl, type TokenVerdict } from './oidcVerifier';

export interface GithubVerifierConfig {
  /** e.g. https://api.github.com, or https://ghe.example.com/api/v3 for GitHub Enterprise Server. */
  apiBaseUrl: string;
  /**
   * The org's Gatehouse GitHub OAuth app. Only tokens issued to it are accepted: a token
   * the user gave any other app (or a personal access token) must not act as them here.
   */
  clientId: string;
  clientSecret: string;
}

export interface GithubVerifierOptions {
  cacheTtlMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

const DEFAULT_CACHE_TTL_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_CACHE_ENTRIES = 10_000;
const MAX_PAGES = 10;

interface CacheEntry {
  expiresAt: number;
  verdict: Promise<TokenVerdict>;
}

/** A GitHub answer that is about the token, not about GitHub being unwell. */
class TokenRefused extends Error {}

export class GithubVerifier {
  private readonly base: URL;
  private readonly cacheTtlMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  /** Keyed by SHA-256 of the token; the token itself is never kept. */
  private readonly cache = new Map<string, CacheEntry>();
  private readonly appAuthorization: string;
  private readonly clientId: string;

  constructor(config: GithubVerifierConfig, options: GithubVerifierOptions = {}) {
    if (!/^[A-Za-z0-9._-]{1,100}$/.test(config.clientId) || !config.clientSecret)
      throw new Error('GitHub sign-in needs the Gatehouse OAuth app client id and secret');
    this.clientId = config.clientId;
    this.appAuthorization = `Basic ${Buffer.from(`${config.clientId}:${config.clientSecret}`).toString('base64')}`;
    const base = requireSecureUrl(config.apiBaseUrl, 'GitHub API base URL');
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.base = base;
    this.cacheTtlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
  }

  verify(token: string): Promise<TokenVerdict> {
    const key = createHash('sha256').update(token).digest('hex');
    const now = this.now();
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt > now) return cached.verdict;
    if (cached) this.cache.delete(key);

    // In-flight lookups are shared, so concurrent calls with one token ask GitHub once.
    const verdict = this.lookUp(token);
    this.remember(key, { expiresAt: now + this.cacheTtlMs, verdict });
    // GitHub being unreachable says nothing about the token: forget it and ask again next time.
    verdict.catch(() => {
      if (this.cache.get(key)?.verdict === verdict) this.cache.delete(key);
    });
    return verdict;
  }

  private remember(key: string, entry: CacheEntry): void {
    if (this.cache.size >= MAX_CACHE_ENTRIES) {
      const now = this.now();
      for (const [k, e] of this.cache) if (e.expiresAt <= now) this.cache.delete(k);
      // Still full: drop the oldest entries (Map keeps insertion order).
      for (const k of this.cache.keys()) {
        if (this.cache.size < MAX_CACHE_ENTRIES) break;
        this.cache.delete(k);
      }
    }
    this.cache.set(key, entry);
  }

  private async lookUp(token: string): Promise<TokenVerdict> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      await this.checkIssuedToApp(token, signal);
      const user = await this.getJson(token, 'user', signal);
      if (!isRecord(user) || typeof user.id !== 'number' || typeof user.login !== 'string') {
        throw new Error('GitHub API answered /user with an unexpected body');
      }
      const [orgs, teams] = await Promise.all([this.getPages(token, 'user/orgs', signal), this.getPages(token, 'user/teams', signal)]);
      const identity: CallerIdentity = {
        sub: `github:${user.id}`,
        issuer: 'github',
        username: user.login,
        claims: {},
        githubOrgs: orgs.map(orgLogin),
        githubTeams: teams.map(teamSlug),
      };
      if (typeof user.email === 'string' && user.email !== '') identity.email = user.email;
      return { ok: true, identity };
    } catch (error) {
      if (error instanceof TokenRefused) return { ok: false, reason: error.message };
      if (signal.aborted)
        throw new Error(`GitHub API at ${this.base.origin} did not answer within ${this.timeoutMs / 1000} s`, { cause: error });
      throw error;
    }
  }

  /** `POST /applications/{client_id}/token` answers 200 only for tokens issued to our app. */
  private async checkIssuedToApp(token: string, signal: AbortSignal): Promise<void> {
    const response = await request(new URL(`applications/${encodeURIComponent(this.clientId)}/token`, this.base), {
      method: 'POST',
      headers: {
        accept: 'application/vnd.github+json',
        'user-agent': 'gatehouse',
        'x-github-api-version': '2022-11-28',
        'content-type': 'application/json',
        authorization: this.appAuthorization,
      },
      body: JSON.stringify({ access_token: token }),
      signal,
    });
    await response.body.dump();
    if (response.statusCode === 200) return;
    if (response.statusCode === 404 || response.statusCode === 422) {
      throw new TokenRefused(
        'GitHub does not accept the token for the Gatehouse GitHub app (it is invalid, expired, revoked, or was not issued to this app); sign in through Gatehouse',
      );
    }
    if (response.statusCode === 401) throw new Error('GitHub refused the Gatehouse app credentials (check the client id and secret)');
    throw new Error(`GitHub API answered the token check with HTTP ${response.statusCode}`);
  }

  private async getPages(token: string, path: string, signal: AbortSignal): Promise<unknown[]> {
    const items: unknown[] = [];
    let url: URL | undefined = new URL(path, this.base);
    url.searchParams.set('per_page', '100');
    for (let page = 0; url && page < MAX_PAGES; page++) {
      const { body, next } = await this.get(token, url, signal);
      if (!Array.isArray(body)) throw new Error(`GitHub API answered /${path} with an unexpected body`);
      items.push(...body);
      url = next;
    }
    // A partial membership list could slip past a deny rule, so too many pages is an error.
    if (url) throw new Error(`GitHub API /${path} has more than ${MAX_PAGES} pages`);
    return items;
  }

  private async getJson(token: string, path: string, signal: AbortSignal): Promise<unknown> {
    return (await this.get(token, new URL(path, this.base), signal)).body;
  }

  private async get(token: string, url: URL, signal: AbortSignal): Promise<{ body: unknown; next: URL | undefined }> {
    const response = await request(url, {
      method: 'GET',
      headers: {
        accept: 'application/vnd.github+json',
        'user-agent': 'gatehouse',
        'x-github-api-version': '2022-11-28',
        authorization: `Bearer ${token}`,
      },
      signal,
    });
    const where = `/${url.pathname.slice(this.base.pathname.length)}`;
    if (response.statusCode === 200) {
      return { body: await response.body.json(), next: this.nextPage(header(response.headers, 'link')) };
    }
    await response.body.dump();
    const status = response.statusCode;
    if (status === 401) throw new TokenRefused('GitHub does not accept the token (it is invalid, expired or revoked)');
    const rateLimited = status === 429 || (status === 403 && header(response.headers, 'x-ratelimit-remaining') === '0');
    if (rateLimited) throw new Error(`GitHub API rate limit reached while reading ${where}`);
    if (status === 403 || status === 404) {
      // Without membership we cannot apply group rules (deny rules included), so refuse.
      throw new TokenRefused(`GitHub token may not read ${where} (HTTP ${status}); sign in again and grant the read:org scope`);
    }
    throw new Error(`GitHub API answered ${where} with HTTP ${status}`);
  }

  /** Follows `Link: rel="next"` only within the configured API, so the token goes nowhere else. */
  private nextPage(link: string | undefined): URL | undefined {
    const match = link?.match(/<([^>]+)>\s*;\s*rel="next"/);
    if (!match?.[1]) return undefined;
    const next = URL.parse(match[1]);
    if (!next || next.origin !== this.base.origin || !next.pathname.startsWith(this.base.pathname)) return undefined;
    return next;
  }
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function orgLogin(org: unknown): string {
  if (isRecord(org) && typeof org.login === 'string') return org.login;
  throw new Error('GitHub API answered /user/orgs with an unexpected entry');
}

function teamSlug(team: unknown): string {
  if (isRecord(team) && typeof team.slug === 'string' && isRecord(team.organization) && typeof team.organization.login === 'string') {
    return `${team.organization.login}/${team.slug}`;
  }
  throw new Error('GitHub API answered /user/teams with an unexpected entry');
}
