/**
 * Messages between the Scopes webview and its host (extension/scopes/scopesPanel.ts): the
 * webview says `ready`, the host sends one row per approved server and sends them again
 * whenever they change. Rows hold facts about credentials, never a credential.
 */
export interface ScopeRow {
  server: string;
  title?: string;
  enabled: boolean;
  credential: 'none' | 'user-oauth' | 'shared-key' | 'relay-oauth';
  /** Scopes the org's policy asks for (user-oauth). */
  scopes: string[];
  /** Where the credential is held, in words. */
  heldBy: string;
  /** When this machine's token for it expires; absent when none is held here. */
  tokenExpires?: string;
  /** user-oauth: whether the developer is signed in to it (a token is kept in SecretStorage). */
  signedIn?: boolean;
  /** The newest audited call to it (ISO time). */
  lastUse?: string;
  calls: number;
}

export type ScopesHostMessage = { type: 'show'; rows: ScopeRow[]; focus?: string };
export type ScopesViewMessage = { type: 'ready' } | { type: 'signOut'; server: string };

export function isScopesViewMessage(value: unknown): value is ScopesViewMessage {
  if (typeof value !== 'object' || value === null) return false;
  const message = value as { type?: unknown; server?: unknown };
  if (message.type === 'ready') return Object.keys(value).length === 1;
  return (
    message.type === 'signOut' &&
    typeof message.server === 'string' &&
    /^[a-z0-9][a-z0-9-]{0,62}$/.test(message.server) &&
    Object.keys(value).length === 2
  );
}
