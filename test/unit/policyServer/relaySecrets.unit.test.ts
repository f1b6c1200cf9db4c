/**
 * The relay's small guards, outside any server: the key scrubber (an echoed key is
 * replaced wherever the stream splits it), the per-user limit, and the secret store
 * (encrypted at rest, bound to its id, refused under another key, key file private).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { KeyScrubber, SCRUBBED } from '../../../policy-server/relay/keyScrubber';
import { PerUserLimit } from '../../../policy-server/relay/perUserLimit';
import { SecretStore } from '../../../policy-server/secrets/secretStore';

const KEY = 'sk-live-0123456789abcdef';

async function scrub(chunks: string[]): Promise<string> {
  return text(Readable.from(chunks.map((c) => Buffer.from(c))).pipe(new KeyScrubber(KEY)));
}

describe('relay: key scrubber', () => {
  it('replaces the key however the stream splits it, and leaves everything else alone', async () => {
    const message = `data: {"text":"called with Bearer ${KEY} and again ${KEY}."}\n\n`;
    for (let cut = 1; cut < message.length; cut += 3) {
      const out = await scrub([message.slice(0, cut), message.slice(cut)]);
      assert.equal(out, message.replaceAll(KEY, SCRUBBED), `split at ${cut}`);
    }
    const oneByte = await scrub([...message]);
    assert.equal(oneByte, message.replaceAll(KEY, SCRUBBED));
    assert.equal(await scrub(['no secret here', ' at all']), 'no secret here at all');
    assert.equal(await scrub(['sk-live-0123']), 'sk-live-0123', 'a prefix of the key at the end is let through');
  });
});

describe('relay: secret store', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-secrets-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps values encrypted at rest and reads them back', async () => {
    const store = SecretStore.open(dir, join(dir, 'k'), { create: true });
    await store.set('vault-key', KEY);
    assert.equal(await store.get('vault-key'), KEY);
    assert.equal(await store.get('other'), undefined);
    assert.ok(!readFileSync(join(dir, 'secrets.json'), 'utf8').includes(KEY));
    assert.deepEqual(
      (await store.list()).map((s) => s.id),
      ['vault-key'],
    );
  });

  it('refuses a ciphertext moved to another id, another key, a readable key file, and bad ids', async () => {
    const store = SecretStore.open(dir, join(dir, 'k'), { create: true });
    await store.set('a', KEY);
    await store.set('b', 'other');
    const file = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as { secrets: Record<string, { jwe: string }> };
    file.secrets.b!.jwe = file.secrets.a!.jwe;
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify(file), { mode: 0o600 });
    await assert.rejects(store.get('b'), (error: Error) => /cannot be decrypted/.test(error.message) && !error.message.includes(KEY));
    const other = SecretStore.open(dir, join(dir, 'k2'), { create: true });
    await assert.rejects(other.get('a'), /cannot be decrypted with this key/);
    chmodSync(join(dir, 'k2'), 0o644);
    assert.throws(() => SecretStore.open(dir, join(dir, 'k2')), /owner only/);
    assert.throws(() => SecretStore.open(dir, join(dir, 'missing')), /does not exist/);
    await assert.rejects(store.set('../etc', 'x'), /secret id/);
    await assert.rejects(store.set('ok', ''), /1 byte/);
  });
});

describe('relay: per-user limit', () => {
  it('lets each user have at most N in flight, counts releases once, and keeps users apart', () => {
    const limit = new PerUserLimit(2);
    const a1 = limit.take('alice')!;
    const a2 = limit.take('alice')!;
    assert.equal(limit.take('alice'), undefined, 'alice is at her limit');
    assert.ok(limit.take('bob'), 'bob is not affected');
    a1();
    a1();
    assert.ok(limit.take('alice'), 'one released (twice counts once)');
    assert.equal(limit.take('alice'), undefined);
    a2();
  });
});
