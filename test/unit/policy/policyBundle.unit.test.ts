import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JSONWebKeySet } from 'jose';
import { compileEffectivePolicy, type EffectivePolicy } from '../../../common/policy/effectivePolicy';
import {
  BUNDLE_AUDIENCE,
  BUNDLE_TYPE,
  BundleRejectedError,
  signPolicyBundle,
  verifyPolicyBundle,
} from '../../../common/policy/policyBundle';
import { parsePolicyDocument } from '../../../common/policy/policyDocument';

const ISSUER = 'https://policy.example.com';
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const TTL = 3600;

interface SigningKey {
  privateKey: CryptoKey;
  kid: string;
}

async function newKey(kid: string): Promise<{ signing: SigningKey; jwk: JSONWebKeySet['keys'][number] }> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  return { signing: { privateKey, kid }, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' } };
}

function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

function decodePart(jws: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(jws.split('.')[index]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Resolves to the rejection reason; fails when the bundle is accepted. */
async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BundleRejectedError, `expected BundleRejectedError, got ${String(error)}`);
    assert.equal(error.message, `Policy bundle rejected: ${error.reason}`);
    return error.reason;
  }
  assert.fail('the bundle was accepted');
}

describe('policy bundle', () => {
  let key: SigningKey;
  let previousKey: SigningKey;
  let keys: JSONWebKeySet;
  let other: Awaited<ReturnType<typeof newKey>>;
  let policy: EffectivePolicy;

  before(async () => {
    const current = await newKey('k-2026');
    const previous = await newKey('k-2025');
    other = await newKey('k-rogue');
    key = current.signing;
    previousKey = previous.signing;
    keys = { keys: [previous.jwk, current.jwk] };
    const document = parsePolicyDocument(
      [
        'version: 1',
        'org: acme',
        'admins: [admins]',
        'servers: [{ id: files, title: Files, transport: { type: stdio, command: /bin/files } }]',
        'groups: [{ id: admins, match: [{ user: alice@example.com }] }]',
        'rules: [{ id: r, effect: allow, principals: [group:admins], servers: [files], when: "args.x == 1" }]',
      ].join('\n'),
      '/org/policy.yaml',
    );
    policy = compileEffectivePolicy(document, 4, {
      sub: 'alice',
      issuer: 'https://login.example.com',
      email: 'alice@example.com',
      claims: { email_verified: true },
    });
  });

  const expected = { sub: 'alice', issuer: ISSUER };

  it('round-trips: what is signed verifies and carries the effective policy', async () => {
    const jws = await signPolicyBundle(policy, key, ISSUER, TTL, NOW);
    assert.deepEqual(decodePart(jws, 0), { alg: 'EdDSA', kid: 'k-2026', typ: BUNDLE_TYPE });
    const claims = await verifyPolicyBundle(jws, keys, expected, NOW + 1000);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.ver, 4);
    assert.deepEqual(claims.groups, ['admins']);
    assert.equal(claims.iat, Math.floor(NOW / 1000));
    assert.equal(claims.exp, Math.floor(NOW / 1000) + TTL);
    assert.deepEqual(claims.policy, policy);
    const payload = decodePart(jws, 1);
    assert.equal(payload.iss, ISSUER);
    assert.equal(payload.aud, BUNDLE_AUDIENCE);
  });

  it('verifies with any pinned key (rotation), and until just before expiry', async () => {
    const jws = await signPolicyBundle(policy, previousKey, ISSUER, TTL, NOW);
    assert.equal((await verifyPolicyBundle(jws, keys, expected, NOW + TTL * 1000 - 1000)).sub, 'alice');
  });

  it('rejects a tampered payload', async () => {
    const jws = await signPolicyBundle(policy, key, ISSUER, TTL, NOW);
    const [header, , signature] = jws.split('.');
    const payload = decodePart(jws, 1) as { policy: EffectivePolicy };
    payload.policy.rules[0]!.when = 'true';
    const reason = await rejection(verifyPolicyBundle(`${header}.${b64(payload)}.${signature}`, keys, expected, NOW));
    assert.equal(reason, 'its signature does not verify (tampered, or signed by an unknown key)');
    // Flipping one character of the signature is caught the same way.
    const flipped = jws.slice(0, -2) + (jws.endsWith('AA') ? 'BB' : 'AA');
    assert.match(await rejection(verifyPolicyBundle(flipped, keys, expected, NOW)), /signature does not verify/);
  });

  it('rejects a bundle for another user', async () => {
    const jws = await signPolicyBundle(policy, key, ISSUER, TTL, NOW);
    const reason = await rejection(verifyPolicyBundle(jws, keys, { sub: 'bob', issuer: ISSUER }, NOW));
    assert.match(reason, /^claim check failed: .*"sub"/);
  });

  it('rejects a bundle from another issuer', async () => {
    const jws = await signPolicyBundle(policy, key, 'https://evil.example.com', TTL, NOW);
    const reason = await rejection(verifyPolicyBundle(jws, keys, expected, NOW));
    assert.match(reason, /^claim check failed: .*"iss"/);
  });

  it('rejects an expired bundle, with no clock skew granted', async () => {
    const jws = await signPolicyBundle(policy, key, ISSUER, TTL, NOW);
    assert.equal(await rejection(verifyPolicyBundle(jws, keys, expected, NOW + TTL * 1000)), 'it has expired');
    assert.equal(await rejection(verifyPolicyBundle(jws, keys, expected, NOW + 2 * TTL * 1000)), 'it has expired');
  });

  it('rejects a bundle signed by a key that is not pinned', async () => {
    const jws = await signPolicyBundle(policy, other.signing, ISSUER, TTL, NOW);
    assert.equal(await rejection(verifyPolicyBundle(jws, keys, expected, NOW)), 'it was signed by a key that is not pinned');
    // An unknown key reusing a pinned kid fails on the signature.
    const impostor = await newKey('k-2026');
    const forged = await signPolicyBundle(policy, impostor.signing, ISSUER, TTL, NOW);
    assert.match(await rejection(verifyPolicyBundle(forged, keys, expected, NOW)), /signature does not verify/);
  });

  it('rejects an unsigned (`alg: none`) bundle', async () => {
    const jws = await signPolicyBundle(policy, key, ISSUER, TTL, NOW);
    const payload = jws.split('.')[1]!;
    for (const header of [
      { alg: 'none', typ: BUNDLE_TYPE },
      { alg: 'none', kid: 'k-2026', typ: BUNDLE_TYPE },
    ]) {
      for (const signature of ['', jws.split('.')[2]!]) {
        const reason = await rejection(verifyPolicyBundle(`${b64(header)}.${payload}.${signature}`, keys, expected, NOW));
        assert.equal(reason, '"alg" (Algorithm) Header Parameter value not allowed');
      }
    }
  });

  it('rejects another algorithm, type or audience, and garbage', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const es = { keys: [...keys.keys, { ...(await exportJWK(publicKey)), kid: 'k-es', alg: 'ES256' }] };
    const claims = { ver: 4, groups: policy.groups, policy };
    const build = (header: Record<string, string>, audience = BUNDLE_AUDIENCE, signer: CryptoKey = key.privateKey) =>
      new SignJWT(claims)
        .setProtectedHeader(header as { alg: string })
        .setSubject('alice')
        .setIssuer(ISSUER)
        .setAudience(audience)
        .setIssuedAt(Math.floor(NOW / 1000))
        .setExpirationTime(Math.floor(NOW / 1000) + TTL)
        .sign(signer);
    assert.equal(
      await rejection(
        verifyPolicyBundle(await build({ alg: 'ES256', kid: 'k-es', typ: BUNDLE_TYPE }, BUNDLE_AUDIENCE, privateKey), es, expected, NOW),
      ),
      '"alg" (Algorithm) Header Parameter value not allowed',
    );
    assert.match(await rejection(verifyPolicyBundle(await build({ alg: 'EdDSA', kid: 'k-2026', typ: 'JWT' }), keys, expected, NOW)), /typ/);
    assert.match(
      await rejection(
        verifyPolicyBundle(await build({ alg: 'EdDSA', kid: 'k-2026', typ: BUNDLE_TYPE }, 'someone-else'), keys, expected, NOW),
      ),
      /"aud"/,
    );
    for (const garbage of ['', 'a.b.c', 'not a jws']) {
      assert.ok((await rejection(verifyPolicyBundle(garbage, keys, expected, NOW))).length > 0);
    }
  });

  it('rejects a signed bundle whose embedded policy is for someone else or another version', async () => {
    const sign = (payload: Record<string, unknown>) =>
      new SignJWT(payload)
        .setProtectedHeader({ alg: 'EdDSA', kid: 'k-2026', typ: BUNDLE_TYPE })
        .setSubject('alice')
        .setIssuer(ISSUER)
        .setAudience(BUNDLE_AUDIENCE)
        .setIssuedAt(Math.floor(NOW / 1000))
        .setExpirationTime(Math.floor(NOW / 1000) + TTL)
        .sign(key.privateKey);
    assert.equal(
      await rejection(verifyPolicyBundle(await sign({ ver: 4, groups: [], policy: { ...policy, sub: 'bob' } }), keys, expected, NOW)),
      'payload does not match its claims',
    );
    assert.equal(
      await rejection(verifyPolicyBundle(await sign({ ver: 5, groups: [], policy }), keys, expected, NOW)),
      'payload does not match its claims',
    );
    assert.match(await rejection(verifyPolicyBundle(await sign({ ver: 4, groups: [] }), keys, expected, NOW)), /"policy"/);
  });

  describe('regressions found in review', () => {
    it('[question] rejects a bundle issued in the future (its lifetime would exceed the TTL)', async function () {
      // Signed by a policy server whose clock is a day ahead: valid here for 25 hours instead of 1.
      const jws = await signPolicyBundle(policy, key, ISSUER, TTL, NOW + 86_400_000);
      await rejection(verifyPolicyBundle(jws, keys, expected, NOW));
    });
  });
});
