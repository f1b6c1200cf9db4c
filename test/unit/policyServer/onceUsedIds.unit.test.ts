/**
 * Once-used ids in one process (MemoryStore.firstUse: DPoP proof and identity assertion ids,
 * IdP sign-in answers): a live id is never forgotten to make room, so a full store refuses
 * new ids (deny when unsure) until some expire. The PostgreSQL store's promises are in
 * test/scale/authorizationState.test.ts.
 */
import assert from 'node:assert/strict';
import { MemoryStore } from '../../../policy-server/authorization/oidcProvider';

describe('once-used ids in memory', () => {
  it('refuses new ids while the store is full of live ones, never forgetting a live one', async () => {
    const store = new MemoryStore(2);
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await store.firstUse('proof a', now + 120), true);
    assert.equal(await store.firstUse('proof b', now + 120), true);
    assert.equal(await store.firstUse('proof c', now + 120), false, 'full: refused, not admitted by forgetting a');
    assert.equal(await store.firstUse('proof a', now + 120), false, 'a is still used');
  });

  it('makes room from expired ids only', async () => {
    const store = new MemoryStore(2);
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await store.firstUse('assertion old', now - 1), true);
    assert.equal(await store.firstUse('assertion live', now + 600), true);
    assert.equal(await store.firstUse('assertion new', now + 600), true, 'the expired one made room');
    assert.equal(await store.firstUse('assertion live', now + 600), false);
  });

  it('counts each kind apart: a flood of one kind leaves room for another', async () => {
    const store = new MemoryStore(1);
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await store.firstUse('ReplayDetection a', now + 120), true);
    assert.equal(await store.firstUse('ReplayDetection b', now + 120), false, 'that kind is full');
    assert.equal(await store.firstUse('dpop https://relay proof-1', now + 120), true, 'a relay proof still finds room');
  });
});
