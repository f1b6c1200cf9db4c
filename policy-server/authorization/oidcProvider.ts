/**
 * What Gatehouse uses of oidc-provider (the policy server's MCP authorization server, and
 * the tests' local IdP), which ships no type declarations: the slice of its API, typed, and
 * a plain in-memory storage adapter for it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
// @ts-expect-error -- oidc-provider ships no type declarations; the shapes used are declared below.
import OidcProvider, { errors as oidcErrors } from 'oidc-provider';

export interface Interaction {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  grantId?: string;
  session?: { accountId?: string };
}
export interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
/** The slice of oidc-provider's Koa context a custom grant handler reads. */
export interface ProviderContext {
  oidc: {
    params: Record<string, string | string[] | undefined>;
    client: { clientId: string; tokenEndpointAuthMethod: string; grantTypeAllowed(grant: string): boolean };
    session?: { accountId?: string; grantIdFor(clientId: string): string | undefined };
    result?: { consent?: { grantId?: string } };
    provider: Provider;
    entity(name: string, value: unknown): void;
  };
  method: string;
  href: string;
  get(header: string): string;
  body: unknown;
}
export interface AccessTokenModel {
  resourceServer: unknown;
  scope: string | undefined;
  setThumbprint(kind: 'jkt', thumbprint: string): void;
  save(): Promise<string>;
  readonly tokenType: string;
  readonly expiration: number;
}
export interface Provider {
  readonly issuer: string;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  registerGrantType(name: string, handler: (ctx: ProviderContext) => Promise<void>, params: string[], dupes?: string[]): void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  /** A Koa middleware run before oidc-provider's own. */
  use(middleware: (ctx: never, next: () => Promise<void>) => Promise<void>): void;
  urlFor(name: string): string;
  Grant: { new (init: { accountId: string; clientId: string }): Grant; find(id: string): Promise<Grant | undefined> };
  AccessToken: new (init: { accountId: string; client: unknown; gty: string; expiresIn?: number }) => AccessTokenModel;
  ResourceServer: new (identifier: string, info: Record<string, unknown>) => unknown;
  Interaction: { find(uid: string): Promise<StoredInteraction | undefined> };
}
/** An interaction as stored: what the login step writes its result into. */
export interface StoredInteraction {
  result: Record<string, unknown> | undefined;
  exp: number;
  returnTo: string;
  save(ttlSeconds: number): Promise<unknown>;
}
export const ProviderClass = OidcProvider as new (issuer: string, configuration: Record<string, unknown>) => Provider;

/** oidc-provider's OAuth error classes: thrown from hooks, they become the RFC 6749 error answers. */
export const OAuthErrors = oidcErrors as {
  InvalidGrant: new (description: string) => Error;
  InvalidTarget: new (description: string) => Error;
  InvalidScope: new (description: string) => Error;
  InvalidRequest: new (description: string) => Error;
  UnauthorizedClient: new (description: string) => Error;
  AccessDenied: new (description: string) => Error;
  InvalidDpopProof: new (description: string) => Error;
};

/** oidc-provider's storage adapter for one model (its `adapter` option); `expiresIn` in seconds. */
export interface OidcAdapter {
  upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void>;
  find(id: string): Promise<Record<string, unknown> | undefined>;
  findByUid(uid: string): Promise<Record<string, unknown> | undefined>;
  findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

/**
 * What the authorization server keeps between requests: oidc-provider's models, and (under
 * model names of its own) the people signed in and the sign-ins pending at the IdP; and the
 * ids that may be used once (DPoP proofs, identity assertions). In memory for one process
 * (MemoryStore), or in PostgreSQL so replicas share it (postgresAuthorizationState.ts).
 */
export interface AuthorizationState {
  adapter(model: string): OidcAdapter;
  /** True the first time `key` is seen (until `expiresAt`, in seconds), false after; atomic across replicas. */
  firstUse(key: string, expiresAt: number): Promise<boolean>;
  /** Removes a live entry of `model` and returns it: whoever takes it first gets it, the others nothing (across replicas). */
  take(model: string, id: string): Promise<Record<string, unknown> | undefined>;
}

/**
 * Once-used ids remembered at most in memory, per kind (the key's first word: `dpop`, `id-jag`,
 * `ReplayDetection`), so a flood of one kind cannot crowd out another; when that many of a
 * kind are live, a new one is refused (deny when unsure), never an old one forgotten.
 */
const MAX_FIRST_USES = 100_000;
/** oidc-provider's model of the DPoP proof and client assertion ids its own grants remember. */
const REPLAY_MODEL = 'ReplayDetection';
/** How long a replay record oidc-provider gives no lifetime is kept (it always gives one). */
const REPLAY_FALLBACK_TTL_SECONDS = 24 * 3600;

/**
 * invalid_grant with the reason as its description: oidc-provider's own says only "grant request
 * is invalid", and a client (or its developer) cannot fix what it is not told. The reasons say
 * which check failed, never a token.
 */
export function refused(reason: string): Error {
  return Object.assign(new OAuthErrors.InvalidGrant(reason), { error_description: reason });
}

/** What is thrown when a code or token is consumed twice, or a replay record written twice (a race lost). */
export function alreadyUsed(what: string): Error {
  return refused(`${what} was already used`);
}

/**
 * The adapter oidc-provider is given for `model`: the state's own, except that oidc-provider's
 * replay records (it checks, then writes) are first claimed as once-used ids, so of two
 * requests (or replicas) that both checked, one writes and the other is refused.
 */
export function providerAdapter(state: AuthorizationState, model: string): OidcAdapter {
  const adapter = state.adapter(model);
  if (model !== REPLAY_MODEL) return adapter;
  return {
    ...adapter,
    upsert: async (id, payload, expiresIn) => {
      const expiresAt = Math.floor(Date.now() / 1000) + (expiresIn ?? REPLAY_FALLBACK_TTL_SECONDS);
      if (!(await state.firstUse(`${REPLAY_MODEL} ${id}`, expiresAt))) throw alreadyUsed(REPLAY_MODEL);
      await adapter.upsert(id, payload, expiresIn);
    },
  };
}

/**
 * Plain in-memory storage (one process). oidc-provider's own memory adapter works too, but
 * it prints a "development-only" warning on every start. Expired entries are swept at most
 * once a minute, so a long-running server does not grow without bound.
 */
export class MemoryStore implements AuthorizationState {
  private readonly entries = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  /** uid and user code -> the entry's key. */
  private readonly lookups = new Map<string, string>();
  /** Once-used ids -> until when (seconds), by kind. */
  private readonly used = new Map<string, Map<string, number>>();
  private lastSweep = Date.now();

  constructor(private readonly maxFirstUses = MAX_FIRST_USES) {}

  async take(model: string, id: string): Promise<Record<string, unknown> | undefined> {
    const entry = this.entries.get(`${model}:${id}`);
    this.entries.delete(`${model}:${id}`); // in the same turn as the read: nobody else can take it in between
    return entry && entry.expiresAt > Date.now() ? entry.payload : undefined;
  }

  async firstUse(key: string, expiresAt: number): Promise<boolean> {
    const now = Math.floor(Date.now() / 1000);
    const kind = key.split(' ', 1)[0]!;
    let used = this.used.get(kind);
    if (!used) this.used.set(kind, (used = new Map()));
    const until = used.get(key);
    if (until !== undefined && until > now) return false;
    if (used.size >= this.maxFirstUses) {
      for (const [usedKey, usedUntil] of used) if (usedUntil <= now) used.delete(usedKey);
      if (used.size >= this.maxFirstUses) return false;
    }
    used.set(key, expiresAt);
    return true;
  }

  adapter(model: string): OidcAdapter {
    const key = (id: string) => `${model}:${id}`;
    const read = (entryKey: string | undefined) => {
      const entry = entryKey === undefined ? undefined : this.entries.get(entryKey);
      return entry && entry.expiresAt > Date.now() ? entry.payload : undefined;
    };
    return {
      upsert: async (id: string, payload: Record<string, unknown>, expiresIn?: number) => {
        this.sweep();
        this.entries.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
        if (typeof payload.uid === 'string') this.lookups.set(`uid:${payload.uid}`, key(id));
        if (typeof payload.userCode === 'string') this.lookups.set(`userCode:${payload.userCode}`, key(id));
      },
      find: async (id: string) => read(key(id)),
      findByUid: async (uid: string) => read(this.lookups.get(`uid:${uid}`)),
      findByUserCode: async (userCode: string) => read(this.lookups.get(`userCode:${userCode}`)),
      consume: async (id: string) => {
        const entry = this.entries.get(key(id));
        if (entry?.payload.consumed !== undefined) throw alreadyUsed(model);
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id: string) => void this.entries.delete(key(id)),
      revokeByGrantId: async (grantId: string) => {
        for (const [k, entry] of this.entries) if (k.startsWith(`${model}:`) && entry.payload.grantId === grantId) this.entries.delete(k);
      },
    };
  }

  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [k, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(k);
    for (const [lookup, k] of this.lookups) if (!this.entries.has(k)) this.lookups.delete(lookup);
  }
}
