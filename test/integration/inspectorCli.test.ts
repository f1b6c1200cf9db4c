/**
 * MCP Inspector's CLI (`@modelcontextprotocol/inspector-cli`) as a second real client of
 * the gateway. It takes headers only on its command line, so this test passes the
 * throwaway launch secret of a test gateway there; the product never puts secrets in argv.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { BIN, NODE, REPO, runProcess, startGateway, stdioServer, type RunningGateway } from '../support/gatewayHarness';

const INSPECTOR = join(REPO, 'node_modules/@modelcontextprotocol/inspector-cli/build/index.js');

describe('MCP Inspector CLI through the gateway', function () {
  this.timeout(60_000);
  let gateway: RunningGateway;
  before(async () => {
    gateway = await startGateway([stdioServer('everything', join(BIN, 'mcp-server-everything'), ['stdio'])]);
  });
  after(() => gateway?.stop());

  const inspect = (...args: string[]) =>
    runInspector([gateway.url('everything'), '--transport', 'http', '--header', `Authorization: Bearer ${gateway.secret}`, ...args]);

  it('lists tools', async () => {
    const { code, stdout } = await inspect('--method', 'tools/list');
    assert.equal(code, 0, stdout);
    const names = (JSON.parse(stdout) as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && names.includes('get-sum'));
  });

  it('calls a tool', async () => {
    const { code, stdout } = await inspect('--method', 'tools/call', '--tool-name', 'get-sum', '--tool-arg', 'a=20', 'b=22');
    assert.equal(code, 0, stdout);
    assert.match(stdout, /42/);
  });

  it('reads a resource and gets a prompt', async () => {
    const resources = await inspect('--method', 'resources/list');
    const uri = (JSON.parse(resources.stdout) as { resources: Array<{ uri: string }> }).resources[0]!.uri;
    const read = await inspect('--method', 'resources/read', '--uri', uri);
    assert.equal(read.code, 0, read.stdout);
    assert.ok((JSON.parse(read.stdout) as { contents: unknown[] }).contents.length > 0);
    const prompt = await inspect('--method', 'prompts/get', '--prompt-name', 'args-prompt', '--prompt-args', 'city=Porto');
    assert.match(prompt.stdout, /Porto/);
  });

  it('is refused without the launch secret', async () => {
    const { code, stdout, stderr } = await runInspector([gateway.url('everything'), '--transport', 'http', '--method', 'tools/list']);
    assert.notEqual(code, 0);
    assert.match(stdout + stderr, /401|Unauthorized/i);
  });
});

// Its build resolves its own package.json against the working directory, so it runs from there.
const runInspector = (args: string[]) => runProcess(NODE, [INSPECTOR, ...args], dirname(INSPECTOR));
