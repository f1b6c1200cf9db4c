import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { generateLaunchSecret, isLaunchSecretText } from '../../../common/control/launchSecretText';
import { writeSecretFile } from '../../../common/fs/privateFiles';
import { LaunchSecret, readSecretLine } from '../../../gateway/http/launchSecret';

describe('launch secret', () => {
  it('accepts exactly its own value as a Bearer token', () => {
    const { secret, value } = LaunchSecret.generate();
    assert.ok(value.length >= 43);
    assert.ok(secret.matchesAuthorization(`Bearer ${value}`));
    assert.ok(secret.matchesAuthorization(`bearer ${value}`));
    assert.ok(!secret.matchesAuthorization(undefined));
    assert.ok(!secret.matchesAuthorization(''));
    assert.ok(!secret.matchesAuthorization(`Basic ${value}`));
    assert.ok(!secret.matchesAuthorization(`Bearer ${value}x`));
    assert.ok(!secret.matchesAuthorization(`Bearer ${value.slice(1)}`));
    assert.ok(!secret.matchesAuthorization(`Bearer ${LaunchSecret.generate().value}`));
  });

  it('is made by one generator for the extension and the gateway, and the gateway takes what it makes', () => {
    const value = generateLaunchSecret();
    assert.ok(isLaunchSecretText(value));
    assert.ok(new LaunchSecret(value).matchesAuthorization(`Bearer ${value}`));
    assert.notEqual(generateLaunchSecret(), value);
  });

  it('refuses weak secrets from a launcher', () => {
    assert.throws(() => new LaunchSecret('short'), /at least 32/);
    assert.throws(() => new LaunchSecret('a'.repeat(40) + ' space'), /token68/);
  });

  it('writes the secret file with mode 0600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-secret-'));
    const path = join(dir, 'launch-secret');
    writeSecretFile(path, 'v'.repeat(43));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(readFileSync(path, 'utf8'), `${'v'.repeat(43)}\n`);
  });

  it('reads the secret as the first line of a pipe', async () => {
    const input = new PassThrough();
    const reading = readSecretLine(input, 1_000);
    input.write('abc');
    input.write('def\nrest');
    assert.equal(await reading, 'abcdef');
    const closed = new PassThrough();
    const empty = readSecretLine(closed, 1_000);
    closed.end();
    await assert.rejects(empty, /stdin closed/);
  });
});
