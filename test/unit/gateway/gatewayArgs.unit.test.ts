import assert from 'node:assert/strict';
import { parseGatewayArgs } from '../../../gateway/cli/gatewayArgs';

describe('gateway command line', () => {
  it('defaults to a unix socket and a secret file in the private runtime folder', () => {
    const args = parseGatewayArgs(['--config', 'g.yaml'], { XDG_RUNTIME_DIR: '/run/user/1000' });
    assert.equal(args.runtimeDir, '/run/user/1000/gatehouse');
    assert.equal(args.listen.type, 'unix');
    assert.deepEqual(args.secretSource, { type: 'file', path: '/run/user/1000/gatehouse/launch-secret' });
  });

  it('accepts loopback TCP only', () => {
    assert.deepEqual(parseGatewayArgs(['--config', 'g.yaml', '--listen', '127.0.0.1:0']).listen, {
      type: 'tcp',
      host: '127.0.0.1',
      port: 0,
    });
    assert.deepEqual(parseGatewayArgs(['--config', 'g.yaml', '--listen', '[::1]:8080']).listen, { type: 'tcp', host: '::1', port: 8080 });
    for (const listen of ['0.0.0.0:80', '192.168.1.2:80', 'localhost:80', '127.0.0.1:99999']) {
      assert.throws(() => parseGatewayArgs(['--config', 'g.yaml', '--listen', listen]), /loopback only/);
    }
  });

  it('has no option that takes a secret, and refuses unknown options', () => {
    assert.throws(() => parseGatewayArgs(['--config', 'g.yaml', '--launch-secret', 'x']), /Unknown option/);
    assert.throws(() => parseGatewayArgs(['--config', 'g.yaml', '--launch-secret-file', 'a', '--launch-secret-stdin']), /choose one/);
    assert.throws(() => parseGatewayArgs([]), /--config/);
  });

  it('allows headless upstream sign-in only for tests, never with an org policy', () => {
    assert.equal(parseGatewayArgs(['--config', 'g.yaml']).testHeadlessOAuth, undefined);
    assert.equal(parseGatewayArgs(['--config', 'g.yaml', '--test-headless-oauth']).testHeadlessOAuth, true);
    assert.throws(
      () =>
        parseGatewayArgs([
          '--policy-server',
          'https://policy.example.com',
          '--policy-keys',
          'k.json',
          '--policy-token-file',
          't',
          '--test-headless-oauth',
        ]),
      /refused with --policy-server/,
    );
  });

  it("takes the user's token from a file or from the extension's sign-in, never from an argument", () => {
    const managed = ['--policy-server', 'https://policy.example.com', '--policy-keys', 'k.json'];
    assert.deepEqual(parseGatewayArgs([...managed, '--policy-token-file', '/t/token']).policy?.token, { type: 'file', path: '/t/token' });
    assert.deepEqual(parseGatewayArgs([...managed, '--policy-token', 'control', '--control', 'stdio']).policy?.token, { type: 'control' });
    assert.throws(() => parseGatewayArgs([...managed, '--policy-token', 'control']), /needs --control stdio/);
    assert.throws(() => parseGatewayArgs([...managed, '--policy-token', 'eyJhbGciOi...', '--control', 'stdio']), /one value: control/);
    assert.throws(
      () => parseGatewayArgs([...managed, '--policy-token-file', 't', '--policy-token', 'control', '--control', 'stdio']),
      /one of/,
    );
    assert.throws(() => parseGatewayArgs(managed), /one of --policy-token-file and --policy-token control/);
  });
});
