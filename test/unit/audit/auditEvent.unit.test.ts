import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AuditEventSchema, createAuditEventId, digestArguments } from '../../../common/audit/auditEvent';
import { sampleEvent } from './auditTestEvents';

describe('audit event', () => {
  it('accepts a complete event and rejects what the wire contract forbids', () => {
    assert.ok(AuditEventSchema.safeParse(sampleEvent(1)).success);
    assert.ok(AuditEventSchema.safeParse({ ...sampleEvent(1), tool: undefined, rule: undefined, argsDigest: undefined }).success);
    for (const bad of [
      { decision: 'maybe' },
      { status: 'fine' },
      { id: 'not-a-ulid' },
      { time: 'yesterday' },
      { argsDigest: 'AB'.repeat(32) },
      { redactions: { token: -1 } },
      { latencyMs: -1 },
      { user: '' },
    ]) {
      assert.equal(AuditEventSchema.safeParse({ ...sampleEvent(1), ...bad }).success, false, JSON.stringify(bad));
    }
  });

  it('digests arguments with a key, independent of key order, never containing the values', () => {
    const key = randomBytes(32);
    const args = { path: '/home/alice/secret-plan.txt', options: { recursive: true, depth: 3 } };
    const digest = digestArguments(args, key);
    assert.match(digest, /^[0-9a-f]{64}$/);
    assert.equal(digestArguments({ options: { depth: 3, recursive: true }, path: '/home/alice/secret-plan.txt' }, key), digest);
    assert.notEqual(digestArguments({ ...args, path: '/home/alice/other.txt' }, key), digest);
    assert.notEqual(digestArguments(args, randomBytes(32)), digest, 'another installation gets another digest');
    assert.equal(digestArguments(undefined, key), digestArguments(null, key));
    assert.throws(() => digestArguments({ n: Number.NaN }, key));
    assert.throws(() => digestArguments(args, randomBytes(16)), /at least 32 bytes/);
  });

  it('makes ULIDs that are unique and sort in the order they were made', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => createAuditEventId(1_700_000_000_000 + Math.floor(i / 1000)));
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    for (const id of ids.slice(0, 10)) assert.ok(AuditEventSchema.shape.id.safeParse(id).success, id);
    // A clock that steps back does not break the order.
    const later = createAuditEventId(1_800_000_000_000);
    assert.ok(createAuditEventId(1_600_000_000_000) > later);
  });
});
