import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ensurePrivateDirectory,
  readPrivateFile,
  readSecretFile,
  writePrivateFileAtomic,
  writePrivateFileAtomicAsync,
} from '../../../common/fs/privateFiles';

describe('private files (common/fs)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-private-'));
  });

  it('makes a private folder 0700 and takes back one others could read', () => {
    const folder = join(dir, 'state');
    ensurePrivateDirectory(folder);
    assert.equal(statSync(folder).mode & 0o777, 0o700);
    chmodSync(folder, 0o755);
    ensurePrivateDirectory(folder);
    assert.equal(statSync(folder).mode & 0o777, 0o700);
  });

  it('refuses a symlink in place of a private folder', () => {
    mkdirSync(join(dir, 'elsewhere'));
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'state'));
    assert.throws(() => ensurePrivateDirectory(join(dir, 'state')), /is not a directory/);
  });

  it('replaces a file atomically with mode 0600, sync and async', async () => {
    const path = join(dir, 'key.json');
    writeFileSync(path, 'old', { mode: 0o644 });
    writePrivateFileAtomic(path, 'new');
    assert.equal(readFileSync(path, 'utf8'), 'new');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    await writePrivateFileAtomicAsync(path, 'newer');
    assert.equal(readFileSync(path, 'utf8'), 'newer');
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('never writes through a symlink planted at the temporary name', () => {
    const path = join(dir, 'key.json');
    const target = join(dir, 'target');
    symlinkSync(target, join(dir, `.key.json.${process.pid}.tmp`));
    writePrivateFileAtomic(path, 'secret');
    assert.equal(existsSync(target), false);
    assert.equal(readFileSync(path, 'utf8'), 'secret');
  });

  it('leaves no temporary copy behind when the replacement fails, sync and async', async () => {
    // A folder where the file should be: the rename fails after the secret was written to the temporary file.
    const target = join(dir, 'key.json');
    mkdirSync(target);
    assert.throws(() => writePrivateFileAtomic(target, 'secret'));
    await assert.rejects(writePrivateFileAtomicAsync(target, 'secret'));
    assert.deepEqual(readdirSync(dir), ['key.json']);
  });

  it('reads a private file but not through a symlink', () => {
    const path = join(dir, 'key');
    writePrivateFileAtomic(path, 'k');
    assert.equal(readPrivateFile(path).toString(), 'k');
    symlinkSync(path, join(dir, 'link'));
    assert.throws(() => readPrivateFile(join(dir, 'link')), /not a regular file/);
  });

  it('reads a secret only from a file others cannot read', () => {
    const path = join(dir, 'password');
    writeFileSync(path, ' hunter2 \n', { mode: 0o644 });
    chmodSync(path, 0o644);
    assert.throws(() => readSecretFile(path), /chmod 600/);
    chmodSync(path, 0o600);
    assert.equal(readSecretFile(path), 'hunter2');
  });
});
