/**
 * The audit event: the one record of an MCP call that the gateway writes to its local
 * spool and ships to the policy server, which stores and serves the same shape. It holds
 * facts about the call, never its content: arguments appear only as a keyed digest, results
 * only as a status and the counts of what was redacted.
 *
 * `argsDigest` is HMAC-SHA256 over the RFC 8785 canonical JSON of the arguments, keyed
 * with a per-installation secret. Keyed, because arguments are often guessable (a path, a
 * repo name) and a plain hash would let anyone holding the trail confirm a guess; the
 * installation can still tell whether two calls carried the same arguments, or whether a
 * call carried a value it is shown.
 */
import { createHmac, randomBytes } from 'node:crypto';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import { AUDIT_DECISIONS, AUDIT_RESULT_STATUSES } from './auditVocabulary';

export { AUDIT_DECISIONS, AUDIT_RESULT_STATUSES, type AuditDecision, type AuditResultStatus } from './auditVocabulary';

/** Bytes of the per-installation key that `argsDigest` is computed with. */
export const ARGS_DIGEST_KEY_BYTES = 32;

const name = z.string().min(1).max(1024);

export const AuditEventSchema = z.object({
  /** ULID: unique, and sorts by creation time; the central store is idempotent on it. */
  id: z.ulid(),
  /** When the call arrived at the gateway (ISO 8601, UTC). */
  time: z.iso.datetime(),
  /** The signed-in user's `sub`, or `local` when the gateway runs unmanaged. */
  user: name,
  /** The MCP client's `clientInfo` from its `initialize`. */
  client: z.object({ name: z.string().max(1024), version: z.string().max(256) }),
  /** Catalog id of the server the call went to. */
  server: name,
  /** JSON-RPC method, e.g. `tools/call`, `resources/read`. */
  method: z.string().min(1).max(256),
  /** Tool name, resource URI or prompt name; absent for methods without one (`tools/list`). */
  tool: name.optional(),
  decision: z.enum(AUDIT_DECISIONS),
  /** Id of the policy rule that decided; absent when nothing matched (default deny) or unmanaged. */
  rule: z.string().min(1).max(256).optional(),
  /** Who answered a confirmation; absent when none was asked. */
  reviewer: name.optional(),
  /** Hex HMAC-SHA256 of the canonical arguments (see `digestArguments`); absent when the request had none. */
  argsDigest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  status: z.enum(AUDIT_RESULT_STATUSES),
  /** How many values of each kind were redacted from the result, e.g. `{ "aws-access-key": 1 }`. */
  redactions: z
    .record(z.string().min(1).max(64), z.number().int().nonnegative())
    .refine((counts) => Object.keys(counts).length <= 256, 'at most 256 kinds of redaction'),
  /** Markers raised on the call, e.g. `injection-marker`, `tool-definition-changed`. */
  flags: z.array(z.string().min(1).max(64)).max(64),
  /** From arrival at the gateway to the response, in milliseconds. */
  latencyMs: z.number().nonnegative().finite(),
});

export type AuditEvent = z.infer<typeof AuditEventSchema>;

/**
 * Hex HMAC-SHA256 of the RFC 8785 canonical JSON of `args`, so equal arguments give equal
 * digests whatever their key order. `undefined` is digested as JSON `null`. Throws on
 * values JSON cannot carry (NaN, BigInt, ...), which never arrive in a JSON-RPC message.
 */
export function digestArguments(args: unknown, key: Uint8Array): string {
  if (key.length < ARGS_DIGEST_KEY_BYTES) throw new Error(`the arguments digest key must be at least ${ARGS_DIGEST_KEY_BYTES} bytes`);
  const canonical = canonicalize(args === undefined ? null : args);
  if (canonical === undefined) throw new TypeError('arguments cannot be represented as JSON');
  return createHmac('sha256', key).update(canonical, 'utf8').digest('hex');
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ULID_RANDOM_DIGITS = 16;
let lastIdTime = -1;
const lastIdRandom = new Uint8Array(ULID_RANDOM_DIGITS);

/**
 * A new ULID for an audit event. Monotonic within this process: ids made in the same
 * millisecond (or while the clock steps back) increment the random part, so sorting by id
 * is the order they were made.
 */
export function createAuditEventId(now: number = Date.now()): string {
  if (now > lastIdTime) {
    lastIdTime = now;
    const bytes = randomBytes(ULID_RANDOM_DIGITS);
    for (let i = 0; i < ULID_RANDOM_DIGITS; i++) lastIdRandom[i] = bytes[i]! & 31;
  } else {
    let i = ULID_RANDOM_DIGITS - 1;
    while (i >= 0 && lastIdRandom[i] === 31) lastIdRandom[i--] = 0;
    if (i >= 0) lastIdRandom[i] = lastIdRandom[i]! + 1;
    else lastIdTime += 1; // 2^80 ids in one millisecond: borrow the next one
  }
  let time = lastIdTime;
  let text = '';
  for (let i = 0; i < 10; i++) {
    text = CROCKFORD[time % 32]! + text;
    time = Math.floor(time / 32);
  }
  for (const digit of lastIdRandom) text += CROCKFORD[digit]!;
  return text;
}
