import assert from 'node:assert/strict';
import { ConfigError, loadGatewayConfig, parseGatewayConfig } from '../../../gateway/config/gatewayConfig';

function problemsOf(text: string): string[] {
  try {
    parseGatewayConfig(text, '/org/gateway.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('gateway config', () => {
  it('parses a valid file, applies defaults and pins relative commands to the file folder', () => {
    const config = parseGatewayConfig(
      [
        'servers:',
        '  - id: files',
        '    transport: { type: stdio, command: ./bin/server, args: [--root, /tmp] }',
        '  - id: remote',
        '    transport: { type: streamable-http, url: "https://mcp.example.com/mcp" }',
      ].join('\n'),
      '/org/gateway.yaml',
    );
    const files = config.servers[0]!;
    assert.equal(files.transport.type, 'stdio');
    if (files.transport.type === 'stdio') {
      assert.equal(files.transport.command, '/org/bin/server');
      assert.deepEqual(files.transport.envAllowlist, ['PATH', 'HOME']);
      assert.equal(files.transport.cwd, '/org');
    }
    assert.equal(config.gateway.maxBodyBytes, 4 * 1024 * 1024);
    assert.equal(config.servers[1]!.enabled, true);
  });

  it('points at the line and column of a bad value', () => {
    const problems = problemsOf(['servers:', '  - id: Bad_Id', '    transport: { type: stdio, command: x }'].join('\n'));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^\/org\/gateway\.yaml:2:9: servers\.0\.id: must be lowercase/);
  });

  it('rejects unknown keys, duplicate ids, non-http URLs and shell-looking env names', () => {
    const problems = problemsOf(
      [
        'servers:',
        '  - id: a',
        '    transport: { type: stdio, command: x, shell: true }',
        '  - id: a',
        '    transport: { type: streamable-http, url: "file:///etc/passwd" }',
        '  - id: b',
        '    transport: { type: stdio, command: x, envAllowlist: ["PATH; rm -rf /"] }',
      ].join('\n'),
    ).join('\n');
    assert.match(problems, /:3:\d+: servers\.0\.transport: Unrecognized key: "shell"/);
    assert.match(problems, /:5:\d+: servers\.1\.transport\.url/);
    assert.match(problems, /:7:\d+: servers\.2\.transport\.envAllowlist\.0: must be an environment variable name/);
    assert.match(problems, /:4:\d+: servers\.1\.id: duplicate server id "a"/);
  });

  it('reports YAML syntax errors with their position', () => {
    const problems = problemsOf('servers:\n  - id: a\n    transport: { type: stdio, command: x\n');
    assert.match(problems[0]!, /^\/org\/gateway\.yaml:\d+:\d+: /);
  });

  it('says when the file cannot be read', () => {
    assert.throws(() => loadGatewayConfig('/nonexistent/gateway.yaml'), /cannot read file: ENOENT/);
  });
});

describe('gateway config: credentials', () => {
  it('refuses credentials embedded in an upstream URL', () => {
    assert.throws(
      () =>
        parseGatewayConfig(
          'servers:\n  - id: a\n    transport: { type: streamable-http, url: "https://user:hunter2@mcp.example.com/mcp" }\n',
          '/g.yaml',
        ),
      (error: Error) => /must not carry credentials/.test(error.message) && !error.message.includes('hunter2'),
    );
  });

  it('keeps user-oauth tokens off clear-text transports and pairs a client secret with its client', () => {
    const server = (transport: string, credential: string) =>
      `servers:\n  - id: a\n    transport: ${transport}\n    credential: ${credential}\n`;
    const https = '{ type: streamable-http, url: "https://mcp.example.com/mcp" }';
    const parsed = parseGatewayConfig(
      server(https, '{ mode: user-oauth, scopes: [notes:read], clientId: gh, clientSecretFile: secret.txt }'),
      '/etc/g/g.yaml',
    );
    assert.deepEqual(parsed.servers[0]!.credential, {
      mode: 'user-oauth',
      scopes: ['notes:read'],
      clientId: 'gh',
      clientSecretFile: '/etc/g/secret.txt',
    });
    assert.equal(
      parseGatewayConfig(server('{ type: streamable-http, url: "http://127.0.0.1:9/mcp" }', '{ mode: user-oauth }'), '/g.yaml').servers[0]!
        .credential.mode,
      'user-oauth',
    );
    assert.throws(
      () => parseGatewayConfig(server('{ type: streamable-http, url: "http://mcp.example.com/mcp" }', '{ mode: user-oauth }'), '/g.yaml'),
      /must be https/,
    );
    assert.throws(
      () => parseGatewayConfig(server('{ type: sse, url: "https://mcp.example.com/sse" }', '{ mode: user-oauth }'), '/g.yaml'),
      /must be streamable-http/,
    );
    assert.throws(
      () => parseGatewayConfig(server(https, '{ mode: user-oauth, clientSecretFile: s.txt }'), '/g.yaml'),
      /needs the clientId/,
    );
    assert.throws(
      () => parseGatewayConfig(server(https, '{ mode: user-oauth, clientMetadataUrl: "http://example.com/client.json" }'), '/g.yaml'),
      /clientMetadataUrl/,
    );
    assert.throws(
      () => parseGatewayConfig(server(https, '{ mode: user-oauth, clientSecret: hunter2 }'), '/g.yaml'),
      (error: Error) => !error.message.includes('hunter2'),
    );
  });

  it('takes an enterprise-managed server with its IdP and pinned authorization server, pins its files to the config folder, and keeps the ID token and client secret off clear text', () => {
    const server = (issuer: string, url = 'https://mcp.example.com/mcp', as = 'https://as.example.com') =>
      `servers:\n  - id: a\n    transport: { type: streamable-http, url: "${url}" }\n` +
      `    credential: { mode: enterprise-managed, authorizationServer: "${as}", clientId: c, clientSecretFile: s.txt, idp: { issuer: "${issuer}", clientId: i, idTokenFile: id.jwt } }\n`;
    assert.deepEqual(parseGatewayConfig(server('https://idp.example.com'), '/etc/g/g.yaml').servers[0]!.credential, {
      mode: 'enterprise-managed',
      authorizationServer: 'https://as.example.com',
      clientId: 'c',
      clientSecretFile: '/etc/g/s.txt',
      idp: { issuer: 'https://idp.example.com', clientId: 'i', idTokenFile: '/etc/g/id.jwt' },
    });
    assert.throws(() => parseGatewayConfig(server('http://idp.example.com'), '/g.yaml'), /idp\.issuer: the IdP must be https/);
    assert.throws(
      () => parseGatewayConfig(server('https://idp.example.com', undefined, 'http://as.example.com'), '/g.yaml'),
      /authorizationServer: the authorization server must be https/,
    );
    assert.throws(
      () => parseGatewayConfig(server('https://idp.example.com').replace(/authorizationServer: "[^"]+", /, ''), '/g.yaml'),
      /authorizationServer/,
      'the authorization server must be pinned',
    );
    assert.throws(() => parseGatewayConfig(server('https://idp.example.com', 'http://mcp.example.com/mcp'), '/g.yaml'), /must be https/);
  });
});
