/**
 * The credential the relay adds to one call, which never leaves the policy server: a
 * `shared-key` server's service key from the secret store, or, for a `relay-oauth` server,
 * the caller's own upstream token (tokenExchange/upstreamTokens.ts). Obtained once per call;
 * a per-user token the upstream refuses is forgotten and obtained anew once.
 */
import type { CatalogServerEntry } from '../../common/policy/policyDocument';
import type { CallerIdentity } from '../../common/policy/identity';
import { ApiError } from '../http/apiErrors';
import type { SecretStore } from '../secrets/secretStore';
import type { UpstreamTokens } from '../tokenExchange/upstreamTokens';

export interface RelayCredentialSources {
  /** Absent when the server runs without `--secrets-key-file`: nothing can be relayed. */
  secrets: SecretStore | undefined;
  /** Absent without `--secrets-key-file` too: relay-oauth servers cannot be reached. */
  upstreamTokens?: UpstreamTokens;
}

export class RelayCredential {
  private value: Promise<string> | undefined;
  /** Every value handed out for this call, for scrubbing text. */
  private readonly known: string[] = [];
  private renewed = false;

  constructor(
    private readonly sources: RelayCredentialSources,
    private readonly server: { id: string; url: string; credential: CatalogServerEntry['credential'] },
    private readonly caller: CallerIdentity,
  ) {}

  current(): Promise<string> {
    this.value ??= this.obtain().then((value) => (this.known.push(value), value));
    return this.value;
  }

  /** The upstream answered 401: true when a new credential is worth a second try (a per-user token, now forgotten). */
  async refused(): Promise<boolean> {
    if (this.server.credential.mode !== 'relay-oauth' || !this.sources.upstreamTokens || this.renewed) return false;
    this.renewed = true;
    await this.sources.upstreamTokens.refused(this.server.id, this.caller.sub, await this.current());
    this.value = undefined;
    return true;
  }

  /** `text` with every credential value of this call replaced. */
  scrub(text: string): string {
    return this.known.reduce((scrubbed, value) => scrubbed.replaceAll(value, '[REDACTED]'), text);
  }

  private async obtain(): Promise<string> {
    const { id, url, credential } = this.server;
    if (!this.sources.secrets)
      throw new ApiError(503, 'no_secret_store', 'This policy server has no secret store (--secrets-key-file), so it cannot relay.');
    if (credential.mode === 'relay-oauth') {
      if (!this.sources.upstreamTokens) throw new ApiError(503, 'no_token_exchange', 'This policy server does not exchange tokens.');
      return this.sources.upstreamTokens.tokenFor(this.caller, { id, url, credential });
    }
    if (credential.mode !== 'shared-key') throw new ApiError(404, 'not_found', `"${id}" is not reached through the relay.`);
    const key = await this.sources.secrets.get(credential.secretRef);
    if (!key)
      throw new ApiError(
        503,
        'no_service_key',
        `The service key for "${id}" is not set; an admin sets it with: gatehouse secret set ${credential.secretRef}`,
      );
    return key;
  }
}
