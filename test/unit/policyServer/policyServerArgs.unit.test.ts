/**
 * `gatehouse policy-server` arguments that pick the store: PostgreSQL only by URL without a
 * password (argv is visible to other local users), the password only from a file.
 */
import assert from 'node:assert/strict';
import { parsePolicyServerArgs } from '../../../policy-server/cli/policyServerArgs';

describe('policy server command line: the store', () => {
  const base = ['--oidc-issuer', 'https://idp.example.com', '--oidc-audience', 'aud'];

  it('keeps the data dir files unless --store names a PostgreSQL database', () => {
    const files = parsePolicyServerArgs(base);
    assert.ok(files.command === 'serve' && files.store === undefined);
    const pg = parsePolicyServerArgs([
      ...base,
      '--store',
      'postgres://gatehouse@db.internal:5432/gatehouse',
      '--store-password-file',
      '/etc/gatehouse/db-password',
    ]);
    assert.ok(pg.command === 'serve');
    assert.deepEqual(pg.store, { url: 'postgres://gatehouse@db.internal:5432/gatehouse', passwordFile: '/etc/gatehouse/db-password' });
    const rotate = parsePolicyServerArgs(['rotate-key', '--store', 'postgresql://gatehouse@db/gatehouse']);
    assert.ok(rotate.command === 'rotate-key' && rotate.store?.url === 'postgresql://gatehouse@db/gatehouse');
  });

  it('refuses a password in the URL without repeating it, other schemes, and a password file alone', () => {
    assert.throws(
      () => parsePolicyServerArgs([...base, '--store', 'postgres://gatehouse:hunter2@db/gatehouse']),
      (e: Error) => /--store-password-file/.test(e.message) && !e.message.includes('hunter2'),
    );
    for (const query of ['password=hunter2', 'sslpassword=hunter2']) {
      assert.throws(
        () => parsePolicyServerArgs([...base, '--store', `postgres://gatehouse@db/gatehouse?${query}`]),
        (e: Error) => /--store-password-file/.test(e.message) && !e.message.includes('hunter2'),
        query,
      );
    }
    assert.throws(() => parsePolicyServerArgs([...base, '--store', 'mysql://db/gatehouse']), /postgres:\/\//);
    assert.throws(() => parsePolicyServerArgs([...base, '--store-password-file', '/x']), /goes with --store/);
  });
});

describe('policy server command line: --relay-requires-dpop', () => {
  const base = ['--oidc-issuer', 'https://idp.example.com', '--oidc-audience', 'aud'];
  const signIn = ['--sign-in-client-id', 'gatehouse', '--sign-in-client-secret-file', '/etc/gatehouse/sign-in-secret'];

  it('turns on with the authorization server, and is off unless asked for', () => {
    const on = parsePolicyServerArgs([...base, ...signIn, '--relay-requires-dpop']);
    assert.ok(on.command === 'serve' && on.relayRequiresDpop);
    const off = parsePolicyServerArgs([...base, ...signIn]);
    assert.ok(off.command === 'serve' && !off.relayRequiresDpop);
  });

  it('refuses to start without the authorization server, or with GitHub sign-in its users could not get past', () => {
    assert.throws(() => parsePolicyServerArgs([...base, '--relay-requires-dpop']), /needs --sign-in-client-id/);
    const github = ['--github-api', 'https://api.github.com', '--github-client-id', 'id', '--github-client-secret-file', '/s'];
    assert.throws(() => parsePolicyServerArgs([...base, ...signIn, ...github, '--relay-requires-dpop']), /cannot go with --github-api/);
  });
});
