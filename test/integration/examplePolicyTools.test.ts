/**
 * examples/org-policy.yaml against the servers it names: none is trusted, so a tool the
 * policy gives no risk counts as destructive (VS Code asks before it, the sidebar badges it
 * so), and a risk under a name the server does not have protects nothing. Each server is
 * started as the example starts it and its tools listed; an update of one of these npm
 * servers that adds or renames a tool fails here until the example says what it is.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { loadPolicyDocument } from '../../common/policy/policyDocument';
import { REPO } from '../support/gatewayHarness';

const EXAMPLE = join(REPO, 'examples/org-policy.yaml');

describe('example policy: a risk for every tool of its servers', function () {
  this.timeout(60_000);
  const policy = loadPolicyDocument(EXAMPLE);
  let scratch: string;
  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-example-tools-'));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  for (const server of policy.servers) {
    it(`${server.id}: every listed tool has a risk, every risk names a listed tool`, async function () {
      const { transport } = server;
      // The example's servers all run locally; a remote one would need a server to list its tools, so it fails here rather than being skipped.
      if (transport.type !== 'stdio') assert.fail(`${server.id} is not a stdio server; this test can only list stdio servers' tools`);
      assert.equal(server.trusted, false, 'a trusted server would have its own annotations believed; this test is about untrusted ones');
      const env = { ...transport.env };
      if (env.MEMORY_FILE_PATH) env.MEMORY_FILE_PATH = join(scratch, 'memory.jsonl'); // the example's own file is the demo's
      const tools = await listTools(transport.command, transport.args, env);
      const given = Object.keys(server.tools).sort();
      assert.deepEqual(
        tools.filter((name) => !given.includes(name)),
        [],
        `${server.id}: tools with no risk in ${EXAMPLE} (they count as destructive)`,
      );
      assert.deepEqual(
        given.filter((name) => !tools.includes(name)),
        [],
        `${server.id}: risks in ${EXAMPLE} for tools the server does not have`,
      );
    });
  }
});

/** The server's tool names, started as the gateway would with --workdir at the repository root. */
async function listTools(command: string, args: string[], env: Record<string, string>): Promise<string[]> {
  const client = new Client({ name: 'gatehouse-example-policy-test', version: '0' });
  await client.connect(
    new StdioClientTransport({
      command: isAbsolute(command) ? command : join(REPO, command),
      args,
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stderr: 'ignore',
    }),
  );
  try {
    return (await client.listTools()).tools.map((tool) => tool.name).sort();
  } finally {
    await client.close();
  }
}
