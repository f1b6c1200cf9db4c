/**
 * What the local IdP (localIdp.ts) uses of oidc-provider, which ships no type declarations:
 * the slice of its API, typed, and a plain in-memory storage adapter for it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
// @ts-expect-error -- oidc-provider ships no type declarations; the shapes used are declared below.
import OidcProvider from 'oidc-provider';

// The slice of oidc-provider's API this harness uses.
export interface Interaction {
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
export interface Provider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: { new (init: { accountId: string; clientId: string }): Grant; find(id: string): Promise<Grant | undefined> };
}
export const ProviderClass = OidcProvider as new (issuer: string, configuration: Record<string, unknown>) => Provider;

/**
 * Plain in-memory storage. oidc-provider's own memory adapter works too, but it prints a
 * "development-only" warning into every test run.
 */
export class MemoryStore {
  private readonly entries = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  private readonly uids = new Map<string, string>();
  private readonly userCodes = new Map<string, string>();

  adapter(model: string) {
    const key = (id: string) => `${model}:${id}`;
    const find = async (id: string | undefined) => {
      if (id === undefined) return undefined;
      const entry = this.entries.get(key(id));
      return entry && entry.expiresAt > Date.now() ? entry.payload : undefined;
    };
    return {
      upsert: async (id: string, payload: Record<string, unknown>, expiresIn?: number) => {
        this.entries.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
        if (typeof payload.uid === 'string') this.uids.set(payload.uid, id);
        if (typeof payload.userCode === 'string') this.userCodes.set(payload.userCode, id);
      },
      find,
      findByUid: async (uid: string) => find(this.uids.get(uid)),
      findByUserCode: async (userCode: string) => find(this.userCodes.get(userCode)),
      consume: async (id: string) => {
        const entry = this.entries.get(key(id));
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id: string) => void this.entries.delete(key(id)),
      revokeByGrantId: async (grantId: string) => {
        for (const [k, entry] of this.entries) if (entry.payload.grantId === grantId) this.entries.delete(k);
      },
    };
  }
}
