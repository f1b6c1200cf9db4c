/**
 * Signed checkpoints. A checkpoint record at seq N carries a compact JWS (EdDSA, the
 * spool's own key) over `{seq: N-1, hash: <hash of record N-1>, time, reason}`, i.e. over
 * the head of the chain it follows, and is itself a link of the chain.
 *
 * What one proves: whoever held the checkpoint key attested, at `time`, that the history
 * up to N-1 hashed to `hash`. Someone who edits that history and recomputes the chain, but
 * has no key, cannot produce a matching checkpoint, so the edit shows. Recovery after a
 * crash trusts the history up to the last good checkpoint and re-checks only what follows.
 *
 * What it does not prove: the key lives next to the spool, so a local attacker who can
 * read it (the machine's owner, malware as that user) can rewrite history and re-sign every
 * checkpoint; and deleting the newest records together with their checkpoints leaves a
 * shorter trail that still verifies. The anchor is the copy shipped to the policy server:
 * checkpoints it has received pin the history up to them.
 */
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import { z } from 'zod';
import { CHECKPOINT_ALGORITHM, type CheckpointPublicKey, type CheckpointSigningKey } from './auditKeys';

export const CHECKPOINT_TYPE = 'gatehouse-audit-checkpoint+jws';

export const CHECKPOINT_REASONS = ['open', 'segment', 'count', 'interval', 'close'] as const;
export type CheckpointReason = (typeof CHECKPOINT_REASONS)[number];

const CheckpointClaimsSchema = z.object({
  /** Format version of the spool. */
  v: z.literal(1),
  seq: z.number().int().nonnegative(),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  time: z.iso.datetime(),
  reason: z.enum(CHECKPOINT_REASONS),
});
export type CheckpointClaims = z.infer<typeof CheckpointClaimsSchema>;

const encoder = new TextEncoder();

export async function signCheckpoint(claims: CheckpointClaims, key: CheckpointSigningKey): Promise<string> {
  return new CompactSign(encoder.encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: CHECKPOINT_ALGORITHM, kid: key.kid, typ: CHECKPOINT_TYPE })
    .sign(key.privateKey);
}

export type CheckpointCheck = { ok: true; claims: CheckpointClaims } | { ok: false; problem: string };

/** Checks the signature and the claims' shape; that they cover the right record is the caller's check. */
export async function verifyCheckpoint(jws: string, key: CheckpointPublicKey): Promise<CheckpointCheck> {
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(jws).kid;
  } catch {
    return { ok: false, problem: 'the checkpoint is not a compact JWS' };
  }
  if (kid !== key.kid) return { ok: false, problem: `the checkpoint was signed by key ${String(kid)}, not by the spool's key ${key.kid}` };
  let payload: Uint8Array;
  try {
    const verified = await compactVerify(jws, key.key, { algorithms: [CHECKPOINT_ALGORITHM] });
    if (verified.protectedHeader.typ !== CHECKPOINT_TYPE)
      return { ok: false, problem: `the checkpoint has type ${String(verified.protectedHeader.typ)}` };
    payload = verified.payload;
  } catch {
    return { ok: false, problem: 'the checkpoint signature does not verify: it was altered or signed with another key' };
  }
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return { ok: false, problem: 'the checkpoint payload is not JSON' };
  }
  const parsed = CheckpointClaimsSchema.safeParse(claims);
  return parsed.success ? { ok: true, claims: parsed.data } : { ok: false, problem: 'the checkpoint payload is not a checkpoint' };
}
