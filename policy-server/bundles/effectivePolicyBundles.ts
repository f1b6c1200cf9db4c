/**
 * Signed effective policy per caller: compile the current org policy for the caller's
 * identity (common/policy/effectivePolicy.ts) and sign it (common/policy/policyBundle.ts)
 * with the current key. A caller no rule names still gets a bundle, with no servers:
 * deny by default is the gateway's job, and an empty bundle tells it so authoritatively.
 *
 * The ETag names what the bundle says (policy version, a hash of the compiled policy,
 * which covers the user and their groups), the signing key, and a freshness epoch of half
 * the bundle lifetime. The epoch makes `If-None-Match` safe for a gateway that revalidates:
 * a 304 always means the bundle it holds has at least half its lifetime left.
 */
import { createHash } from 'node:crypto';
import { compileEffectivePolicy, type EffectivePolicy } from '../../common/policy/effectivePolicy';
import type { CallerIdentity } from '../../common/policy/identity';
import { signPolicyBundle } from '../../common/policy/policyBundle';
import type { SigningKeyRing } from '../keys/signingKeyRing';
import type { PolicyService } from '../policies/policyService';

export type BundleAnswer =
  { status: 200; etag: string; jws: string; version: number; expiresAt: number } | { status: 304; etag: string; version: number };

export class NoPolicyError extends Error {
  constructor() {
    super('No policy has been published yet. An admin must publish one (or start the server with --bootstrap-policy <file>).');
  }
}

/** Compiled effective policies kept (per version, caller and revoked credentials): a revalidation is then a few hashes. */
const MAX_COMPILED = 2_000;

export class EffectivePolicyBundles {
  private readonly compiled = new Map<string, { effective: EffectivePolicy; digest: string }>();

  constructor(
    private readonly policies: PolicyService,
    private readonly keys: SigningKeyRing,
    private readonly issuer: string,
    /** The caller's revoked upstream credentials (policy-server/revocations/). */
    private readonly revokedCredentials: (sub: string) => Promise<Array<{ serverId: string; revokedAt: string }>> = async () => [],
  ) {}

  async forCaller(caller: CallerIdentity, ifNoneMatch: string | undefined, now = Date.now()): Promise<BundleAnswer> {
    const current = await this.policies.current();
    if (!current) throw new NoPolicyError();
    await this.keys.refresh();
    const key = this.keys.current();
    const credentialRevocations = await this.revokedCredentials(caller.sub);
    const { effective, digest } = this.compile(current, caller, credentialRevocations);
    const ttlSeconds = current.document.guardrails.bundleTtlSeconds;
    const etag = bundleEtag(effective.ver, digest, key.kid, ttlSeconds, now);
    if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, etag)) return { status: 304, etag, version: current.version };
    const jws = await signPolicyBundle(effective, key, this.issuer, ttlSeconds, now);
    return { status: 200, etag, jws, version: current.version, expiresAt: Math.floor(now / 1000) + ttlSeconds };
  }

  /** The caller's effective policy and its digest, compiled once per (version, caller, revoked credentials). */
  private compile(
    current: { version: number; document: Parameters<typeof compileEffectivePolicy>[0] },
    caller: CallerIdentity,
    credentialRevocations: Array<{ serverId: string; revokedAt: string }>,
  ): { effective: EffectivePolicy; digest: string } {
    const key = sha256(JSON.stringify([current.version, caller, credentialRevocations]));
    const known = this.compiled.get(key);
    if (known) return known;
    const effective: EffectivePolicy = compileEffectivePolicy(current.document, current.version, caller);
    if (credentialRevocations.length > 0) effective.credentialRevocations = credentialRevocations;
    const entry = { effective, digest: sha256(JSON.stringify(effective)).slice(0, 22) };
    if (this.compiled.size >= MAX_COMPILED) this.compiled.delete(this.compiled.keys().next().value!);
    this.compiled.set(key, entry);
    return entry;
  }
}

function bundleEtag(version: number, digest: string, kid: string, ttlSeconds: number, now: number): string {
  const epoch = Math.floor(now / ((ttlSeconds * 1000) / 2));
  return `"v${version}.${digest}.${kid.slice(0, 12)}.${epoch}"`;
}

/** RFC 9110 If-None-Match: `*` or a list of entity tags compared weakly. */
function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((candidate) => opaque(candidate) === opaque(etag));
}
