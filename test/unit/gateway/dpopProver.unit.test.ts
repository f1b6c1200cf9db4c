/**
 * The gateway's DPoP proofs (gateway/upstreamAuth/dpopProver.ts) checked by the policy
 * server's verifier (policy-server/authorization/dpopProof.ts): the two ends of RFC 9449
 * in this repo agree, and what a proof must not carry it does not carry.
 */
import assert from 'node:assert/strict';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader } from 'jose';
import { DpopProver, newDpopKey, offersDpop } from '../../../gateway/upstreamAuth/dpopProver';
import { verifyDpopProof } from '../../../policy-server/authorization/dpopProof';
import { MemoryStore } from '../../../policy-server/authorization/oidcProvider';

const URL_ = 'https://relay.example.com/relay/docs/mcp';

describe('DPoP proofs the gateway signs', () => {
  it('verify at the policy server for their method, URL and token, with the key the tokens are bound to', async () => {
    const key = await newDpopKey();
    const prover = new DpopProver();
    const proof = await prover.proof(key, 'POST', `${URL_}?ignored=1`, 'the-access-token');
    const thumbprint = await verifyDpopProof(proof, { method: 'POST', url: URL_, accessToken: 'the-access-token' }, new MemoryStore());
    const { kty, crv, x, y } = key;
    assert.equal(thumbprint, await calculateJwkThumbprint({ kty, crv, x, y }));
    assert.deepEqual(
      Object.keys(decodeProtectedHeader(proof).jwk ?? {}).sort(),
      ['crv', 'kty', 'x', 'y'],
      'only the public key goes into a proof',
    );
    assert.equal(decodeJwt(proof).htu, URL_, 'htu has no query');

    const again = await prover.proof(key, 'POST', URL_, 'the-access-token');
    assert.notEqual(decodeJwt(again).jti, decodeJwt(proof).jti, 'every proof is fresh');
    await assert.rejects(
      verifyDpopProof(proof, { method: 'POST', url: URL_, accessToken: 'another-token' }, new MemoryStore()),
      /not bound to this access token/,
    );
    await assert.rejects(
      verifyDpopProof(proof, { method: 'GET', url: URL_, accessToken: 'the-access-token' }, new MemoryStore()),
      /another HTTP method/,
    );
  });

  it('carry the nonce a server supplied, per endpoint, and keep no malformed one', async () => {
    const key = await newDpopKey();
    const prover = new DpopProver();
    assert.equal(prover.noteNonce(URL_, 'nonce-1'), true);
    assert.equal(prover.noteNonce(URL_, 'nonce-1'), false, 'the same nonce again is not news');
    assert.equal(prover.noteNonce(URL_, 'bad "nonce"'), false);
    assert.equal(prover.noteNonce(URL_, 'x'.repeat(513)), false);
    assert.equal(decodeJwt(await prover.proof(key, 'POST', URL_)).nonce, 'nonce-1');
    assert.equal(decodeJwt(await prover.proof(key, 'POST', 'https://as.example.com/token')).nonce, undefined);
    // An authorization server on the resource's origin keeps its own nonce.
    const sameOriginToken = 'https://relay.example.com/oauth/token';
    assert.equal(decodeJwt(await prover.proof(key, 'POST', sameOriginToken)).nonce, undefined);
    assert.equal(prover.noteNonce(sameOriginToken, 'as-nonce'), true);
    assert.equal(decodeJwt(await prover.proof(key, 'POST', sameOriginToken)).nonce, 'as-nonce');
    assert.equal(decodeJwt(await prover.proof(key, 'GET', `${URL_}?x=1`)).nonce, 'nonce-1', "the resource's is unchanged");
  });

  it('are used only where the authorization server offers ES256', () => {
    assert.equal(offersDpop({ dpop_signing_alg_values_supported: ['ES256', 'RS256'] }), true);
    assert.equal(offersDpop({ dpop_signing_alg_values_supported: ['RS256'] }), false);
    assert.equal(offersDpop({ dpop_signing_alg_values_supported: 'ES256' }), false);
    assert.equal(offersDpop({}), false);
  });
});
