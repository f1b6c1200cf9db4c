/**
 * The catalog as an MCP Registry (`/v0.1/servers`, #7 item 4), on the real policy server
 * with the real local IdP: each user gets the servers their policy lets them use, in the
 * registry API's shape (ServerList / ServerResponse with server.json entries and the
 * official `_meta`), with paging, search, the versions routes, CORS for VS Code's gallery,
 * and no anonymous catalog.
 */
import assert from 'node:assert/strict';
import type { RegistryServerResponse } from '../../policy-server/registry/registryRoutes';
import { NODE } from '../support/gatewayHarness';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { removeDir, startPolicyServer, type RunningPolicyServer } from '../support/policyHarness';

const POLICY = `version: 1
org: Example Corp
admins: [admins]
servers:
  - { id: files, title: Files, description: Read the project files, transport: { type: stdio, command: ${NODE}, args: [files.mjs] } }
  - { id: github, title: GitHub, transport: { type: streamable-http, url: "https://mcp.github.example.com/mcp" }, credential: { mode: user-oauth } }
  - { id: vault, title: Vault API, transport: { type: streamable-http, url: "https://vault.example.com/mcp" }, credential: { mode: shared-key, secretRef: vault-key } }
  - { id: payroll, title: Payroll, transport: { type: sse, url: "https://payroll.example.com/sse" } }
groups:
  - { id: engineers, match: [{ claim: groups, equals: engineers }] }
  - { id: contractors, match: [{ claim: groups, equals: contractors }] }
  - { id: admins, match: [{ user: carol@example.com }] }
rules:
  - { id: engineers, effect: allow, principals: [group:engineers], servers: [files, github, vault] }
  - { id: contractors, effect: allow, principals: [group:contractors], servers: [files] }
  - { id: everyone-reads, effect: allow, principals: ["*"], servers: [files], tools: [read_file] }
`;

interface ServerList {
  servers: RegistryServerResponse[];
  metadata: { count: number; nextCursor?: string };
}

describe('the catalog as an MCP Registry (/v0.1/servers)', function () {
  this.timeout(60_000);
  let idp: LocalIdp;
  let server: RunningPolicyServer;
  const tokens: Record<string, string> = {};
  const get = (path: string, user?: string) =>
    fetch(`${server.url}/v0.1${path}`, {
      headers: user
        ? { Authorization: `Bearer ${tokens[user]}`, Origin: 'vscode-file://vscode-app' }
        : { Origin: 'vscode-file://vscode-app' },
    });

  before(async () => {
    idp = await startLocalIdp();
    for (const user of ['alice', 'bob']) tokens[user] = await idp.tokenFor(user);
    server = await startPolicyServer(idp, { policyYaml: POLICY });
  });

  after(async () => {
    await server?.stop();
    await idp?.stop();
    if (server) removeDir(server.dir);
  });

  it("lists each user's own catalog in the registry API shape", async () => {
    const answer = await get('/servers', 'alice');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('access-control-allow-origin'), '*');
    const list = (await answer.json()) as ServerList;
    assert.deepEqual(
      list.servers.map((s) => s.server.name),
      ['com.gatehouse.example-corp/files', 'com.gatehouse.example-corp/github', 'com.gatehouse.example-corp/vault'],
    );
    assert.equal(list.metadata.count, 3);
    for (const { server: entry, _meta: meta } of list.servers) {
      assert.match(entry.name, /^[a-zA-Z0-9.-]+\/[a-zA-Z0-9._-]+$/, 'reverse-DNS namespace / name');
      assert.match(entry.$schema, /^https:\/\/static\.modelcontextprotocol\.io\/schemas\/.+\/server\.schema\.json$/);
      assert.equal(entry.version, '1.0.1', 'moves with the policy version');
      assert.ok(entry.description.length > 0);
      const official = meta['io.modelcontextprotocol.registry/official'];
      assert.deepEqual([official?.status, official?.isLatest], ['active', true]);
      assert.ok(!Number.isNaN(Date.parse(official!.publishedAt)));
    }
    const byId = Object.fromEntries(list.servers.map((s) => [s.server.name.split('/')[1], s.server]));
    assert.equal(byId.files?.description, 'Read the project files');
    assert.equal(byId.files?.remotes, undefined, 'a stdio server runs through the gateway: nothing to connect to directly');
    assert.deepEqual(byId.github?.remotes, [{ type: 'streamable-http', url: 'https://mcp.github.example.com/mcp' }]);
    assert.deepEqual(
      byId.vault?.remotes,
      [{ type: 'streamable-http', url: `${server.url}/relay/vault/mcp` }],
      'a shared-key server is reached at the relay, never directly',
    );

    const bob = (await (await get('/servers', 'bob')).json()) as ServerList;
    assert.deepEqual(
      bob.servers.map((s) => s.server.name),
      ['com.gatehouse.example-corp/files'],
      "only what bob's policy lets him use",
    );
    assert.ok(!JSON.stringify(bob).includes('payroll') && !JSON.stringify(bob).includes('vault'));
  });

  it('pages with a cursor, searches, and serves the versions routes', async () => {
    const first = (await (await get('/servers?limit=2', 'alice')).json()) as ServerList;
    assert.equal(first.servers.length, 2);
    assert.ok(first.metadata.nextCursor);
    const second = (await (
      await get(`/servers?limit=2&cursor=${encodeURIComponent(first.metadata.nextCursor!)}`, 'alice')
    ).json()) as ServerList;
    assert.deepEqual(
      second.servers.map((s) => s.server.name),
      ['com.gatehouse.example-corp/vault'],
    );
    assert.equal(second.metadata.nextCursor, undefined);
    const found = (await (await get('/servers?search=git', 'alice')).json()) as ServerList;
    assert.deepEqual(
      found.servers.map((s) => s.server.title),
      ['GitHub'],
    );
    const name = encodeURIComponent('com.gatehouse.example-corp/github');
    const latest = await get(`/servers/${name}/versions/latest`, 'alice');
    assert.equal(latest.status, 200);
    assert.equal(((await latest.json()) as ServerList['servers'][number]).server.title, 'GitHub');
    assert.equal((await get(`/servers/${name}/versions`, 'alice')).status, 200);
    assert.equal((await get(`/servers/${name}/versions/0.9.0`, 'alice')).status, 404);
    assert.equal(
      (await get(`/servers/${encodeURIComponent('com.gatehouse.example-corp/payroll')}/versions/latest`, 'alice')).status,
      404,
      'a server the policy does not give alice does not exist for her',
    );
  });

  it("has no anonymous catalog, and answers the gallery's CORS preflight", async () => {
    const anonymous = await get('/servers');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('access-control-allow-origin'), '*', 'the gallery can read why');
    const preflight = await fetch(`${server.url}/v0.1/servers`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://vscode.dev', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /GET/);
  });

  it('answers a gallery without a token only when asked to, with what the policy gives everyone', async () => {
    const open = await startPolicyServer(idp, { policyYaml: POLICY, extraArgs: ['--registry-anonymous'] });
    try {
      const anonymous = await fetch(`${open.url}/v0.1/servers`);
      assert.equal(anonymous.status, 200);
      const list = (await anonymous.json()) as ServerList;
      assert.deepEqual(
        list.servers.map((s) => s.server.name),
        ['com.gatehouse.example-corp/files'],
        'only what a "*" rule gives',
      );
      const alice = (await (
        await fetch(`${open.url}/v0.1/servers`, { headers: { Authorization: `Bearer ${tokens.alice}` } })
      ).json()) as ServerList;
      assert.equal(alice.servers.length, 3, 'a caller with a token still gets their own catalog');
      assert.equal(
        (await fetch(`${open.url}/v0.1/servers`, { headers: { Authorization: 'Bearer not-a-token' } })).status,
        401,
        'a bad token is refused, not treated as anonymous',
      );
    } finally {
      await open.stop();
      removeDir(open.dir);
    }
  });
});
