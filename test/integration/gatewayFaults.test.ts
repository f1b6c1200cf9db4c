/**
 * Faults and hostile input against the real gateway process: upstreams that die or never
 * answer (started at launch or on first use), oversized and malformed bodies, wrong
 * secrets, foreign origins, and shutdown ending whole upstream process trees.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { ReadyNotification } from '../../common/control/controlProtocol';
import type { GatewayReadyServer } from '../../common/gatewayReady';
import {
  fixtureServer,
  freePort,
  rawPost,
  waitUntil,
  startEverythingHttp,
  startGateway,
  stdioServer,
  textOf,
  type RunningGateway,
} from '../support/gatewayHarness';

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

/** The direct child processes of `pid` (Linux: /proc/<pid>/task/<tid>/children over its threads). */
function childrenOf(pid: number): number[] {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks.flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
      .split(' ')
      .filter((text) => text.trim() !== '')
      .map(Number),
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('gateway under faults', function () {
  this.timeout(60_000);

  describe('upstream failures (eager start: every upstream at launch)', () => {
    let gateway: RunningGateway;
    before(async () => {
      gateway = await startGateway(
        [
          fixtureServer('probe', 'probe-upstream'),
          fixtureServer('wedged', 'probe-upstream', ['--hang-initialize']),
          stdioServer('missing', '/nonexistent/mcp-server'),
        ],
        { gateway: { upstreamInitializeTimeoutMs: 2_000, upstreamStart: 'eager' } },
      );
    });
    after(() => gateway?.stop());

    it('reports each failed upstream by name with its cause, without delaying the others', () => {
      const byId = Object.fromEntries(gateway.ready.servers.map((s) => [s.id, s]));
      assert.equal(byId.probe?.state, 'ready');
      assert.equal(byId.wedged?.state, 'failed');
      assert.match(byId.wedged?.error ?? '', /no answer to initialize within 2000 ms/);
      assert.equal(byId.missing?.state, 'failed');
      assert.match(byId.missing?.error ?? '', /ENOENT/);
      assert.ok((byId.probe?.startupMs ?? Infinity) < 2_000, `probe waited for the wedged server: ${byId.probe?.startupMs} ms`);
    });

    it('answers initialize on a failed upstream with a JSON-RPC error naming it', async () => {
      await assert.rejects(gateway.connect('missing'), /Upstream server "missing".*ENOENT/);
    });

    it('turns an upstream killed mid-call into an error naming it within 1 s, then restarts it', async () => {
      const client = await gateway.connect('probe');
      const pid = Number(textOf(await client.callTool({ name: 'pid', arguments: {} })));
      const call = client.callTool({ name: 'sleep', arguments: { ms: 30_000 } });
      await new Promise((r) => setTimeout(r, 200));
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await assert.rejects(call, (error: Error) => {
        assert.match(error.message, /Upstream server "probe"/);
        assert.match(error.message, /SIGKILL/);
        return true;
      });
      const waited = Date.now() - killedAt;
      assert.ok(waited < 1_000, `error took ${waited} ms`);
      const newPid = Number(textOf(await client.callTool({ name: 'pid', arguments: {} })));
      assert.notEqual(newPid, pid, 'a new upstream process serves the next call');
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'back' } })), 'back');
    });
  });

  describe('lazy start (the default): each upstream on first use', () => {
    let gateway: RunningGateway;
    const heard: GatewayReadyServer[][] = [];
    before(async () => {
      gateway = await startGateway([fixtureServer('probe', 'probe-upstream'), stdioServer('missing', '/nonexistent/mcp-server')], {
        control: true,
      });
      // After the first ready (the harness's own listener takes that one): each later one is a state change.
      gateway.control!.onNotification(ReadyNotification, (ready) => {
        heard.push(ready.servers);
      });
    });
    after(() => gateway?.stop());
    const stateOf = (servers: readonly GatewayReadyServer[] | undefined, id: string) => servers?.find((s) => s.id === id)?.state;

    it('is ready before any upstream runs: every server idle, no child process', () => {
      assert.deepEqual(
        gateway.ready.servers.map((s) => [s.id, s.state]),
        [
          ['probe', 'idle'],
          ['missing', 'idle'],
        ],
      );
      assert.deepEqual(childrenOf(gateway.child.pid!), [], 'nothing was spawned at launch');
    });

    it('starts a server for the first client that asks, and tells the extension starting, then ready', async () => {
      const before = heard.length;
      const client = await gateway.connect('probe');
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'lazy' } })), 'lazy');
      assert.equal(childrenOf(gateway.child.pid!).length, 1, 'one upstream process: the one asked for');
      await waitUntil(() => stateOf(heard.at(-1), 'probe') === 'ready', 5_000);
      const told = heard.slice(before).map((servers) => [stateOf(servers, 'probe'), stateOf(servers, 'missing')]);
      assert.deepEqual(told, [
        ['starting', 'idle'],
        ['ready', 'idle'],
      ]);
      assert.ok((heard.at(-1)!.find((s) => s.id === 'probe')!.startupMs ?? 0) > 0, 'the start is timed');
    });

    it('fails a broken server when first asked for, naming it, and tells the extension why', async () => {
      await assert.rejects(gateway.connect('missing'), /Upstream server "missing".*ENOENT/);
      await waitUntil(() => stateOf(heard.at(-1), 'missing') === 'failed', 5_000);
      const missing = heard.at(-1)!.find((s) => s.id === 'missing')!;
      assert.match(missing.error ?? '', /ENOENT/);
      assert.equal(stateOf(heard.at(-1), 'probe'), 'ready', 'the other server is untouched');
    });
  });

  describe('HTTP upstream failures', () => {
    it('turns an HTTP upstream killed mid-call into an error naming it within 1 s, and reconnects once it is back', async () => {
      const port = await freePort();
      let upstream = await startEverythingHttp(port);
      const gateway = await startGateway([{ id: 'remote', transport: { type: 'streamable-http', url: `http://127.0.0.1:${port}/mcp` } }]);
      try {
        const client = await gateway.connect('remote');
        const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 20, steps: 20 } });
        await new Promise((r) => setTimeout(r, 300));
        const killedAt = Date.now();
        upstream.kill('SIGKILL');
        await assert.rejects(call, /Upstream server "remote"/);
        const waited = Date.now() - killedAt;
        assert.ok(waited < 1_000, `error took ${waited} ms`);
        await assert.rejects(
          client.callTool({ name: 'echo', arguments: { message: 'down' } }),
          /Upstream server "remote".*ECONNREFUSED|Upstream server "remote"/,
        );
        upstream = await startEverythingHttp(port);
        // The restarted upstream forgot the session (404): the gateway opens a new one for us.
        // Failed restarts while it was down put the server in backoff, so retry like a user would.
        let answer = '';
        let lastError = '';
        const deadline = Date.now() + 5_000;
        while (!answer && Date.now() < deadline) {
          answer = await client.callTool({ name: 'echo', arguments: { message: 'back' } }).then(textOf, async (error: Error) => {
            lastError = error.message;
            await new Promise((r) => setTimeout(r, 250));
            return '';
          });
        }
        assert.match(answer, /back/, lastError);
      } finally {
        upstream.kill('SIGKILL');
        await gateway.stop();
      }
    });
  });

  describe('restart backoff', () => {
    let gateway: RunningGateway;
    before(async () => {
      gateway = await startGateway([fixtureServer('probe', 'probe-upstream')]);
    });
    after(() => gateway?.stop());

    it('restarts an upstream that exited mid-call at once, then backs off when it keeps dying', async () => {
      const client = await gateway.connect('probe');
      await assert.rejects(client.callTool({ name: 'crash', arguments: {} }), /Upstream server "probe".*code 3/);
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'restarted' } })), 'restarted');
      await assert.rejects(client.callTool({ name: 'crash', arguments: {} }), /code 3/);
      await assert.rejects(
        client.callTool({ name: 'echo', arguments: { text: 'too soon' } }),
        /failed 2 times in a row; Gatehouse tries again in 1 s/,
      );
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'after backoff' } })), 'after backoff');
    });
  });

  describe('hostile requests', () => {
    let gateway: RunningGateway;
    before(async () => {
      gateway = await startGateway([fixtureServer('probe', 'probe-upstream'), fixtureServer('other', 'probe-upstream')], {
        gateway: { maxBodyBytes: 65_536 },
      });
    });
    after(() => gateway?.stop());
    const auth = () => ({ Authorization: `Bearer ${gateway.secret}` });

    it('refuses a missing or wrong launch secret with a plain 401 (no OAuth challenge)', async () => {
      for (const headers of [
        {} as Record<string, string>,
        { Authorization: 'Bearer wrong-secret-wrong-secret-wrong-secret' },
        { Authorization: `Basic ${gateway.secret}` },
      ]) {
        const response = await rawPost(gateway.url('probe'), INITIALIZE, headers);
        assert.equal(response.status, 401);
        assert.ok(!/resource_metadata/i.test(response.headers.get('www-authenticate') ?? ''));
        assert.ok(!response.text.includes(gateway.secret));
      }
    });

    it('refuses a foreign Origin or Host (DNS rebinding) with 403', async () => {
      const foreignOrigin = await rawPost(gateway.url('probe'), INITIALIZE, { ...auth(), Origin: 'http://evil.example.com' });
      assert.equal(foreignOrigin.status, 403);
      const port = gateway.ready.listen.type === 'tcp' ? gateway.ready.listen.port : 0;
      const ownOrigin = await rawPost(gateway.url('probe'), INITIALIZE, { ...auth(), Origin: `http://localhost:${port}` });
      assert.equal(ownOrigin.status, 200);
      const { request } = await import('undici');
      const foreignHost = await request(gateway.url('probe'), {
        method: 'POST',
        body: INITIALIZE,
        headers: { ...auth(), host: 'evil.example.com', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      });
      assert.equal(foreignHost.statusCode, 403);
      await foreignHost.body.text();
    });

    it('answers an oversized body with 413 and keeps serving', async () => {
      const huge = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(100_000) } });
      const response = await rawPost(gateway.url('probe'), huge, auth()).catch((error: Error) => ({
        status: 0,
        text: error.message,
        headers: new Headers(),
      }));
      assert.equal(response.status, 413);
      const client = await gateway.connect('probe');
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'ok' } })), 'ok');
    });

    it('answers garbage with a JSON-RPC error, never a crash', async () => {
      const garbage = await rawPost(gateway.url('probe'), '{"jsonrpc": "2.0", "id": 1, "method": ', auth());
      assert.equal(garbage.status, 400);
      assert.equal(JSON.parse(garbage.text).error.code, -32700);
      const binary = await rawPost(gateway.url('probe'), Buffer.from([0xff, 0xfe, 0x00, 0x01]), auth());
      assert.equal(binary.status, 400);
      const notJsonRpc = await rawPost(gateway.url('probe'), '{"hello": "world"}', auth());
      assert.equal(notJsonRpc.status, 400);
      assert.ok(JSON.parse(notJsonRpc.text).error, 'a JSON-RPC error object');
      const client = await gateway.connect('probe');
      const sessionUrl = gateway.url('probe');
      const transport = (client as unknown as { _transport: { sessionId?: string } })._transport;
      const inSession = await rawPost(sessionUrl, '[1, 2, 3]', { ...auth(), 'mcp-session-id': transport.sessionId! });
      assert.equal(inSession.status, 400);
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'alive' } })), 'alive');
      assert.equal(gateway.child.exitCode, null);
    });

    it('refuses methods it does not relay', async () => {
      const client = await gateway.connect('probe');
      await assert.rejects(
        client.request({ method: 'tasks/list', params: {} }, (await import('@modelcontextprotocol/sdk/types.js')).ResultSchema),
        /not relayed by Gatehouse/,
      );
    });

    it('binds a session to its server: another path cannot use it, unknown sessions get 404', async () => {
      const client = await gateway.connect('probe');
      const sessionId = (client as unknown as { _transport: { sessionId?: string } })._transport.sessionId!;
      const ping = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' });
      const elsewhere = await rawPost(gateway.url('other'), ping, { ...auth(), 'mcp-session-id': sessionId });
      assert.equal(elsewhere.status, 404);
      const unknown = await rawPost(gateway.url('probe'), ping, { ...auth(), 'mcp-session-id': 'not-a-session' });
      assert.equal(unknown.status, 404);
      const noServer = await rawPost(`${gateway.baseUrl}/mcp/nope`, INITIALIZE, auth());
      assert.equal(noServer.status, 404);
      const withoutSession = await rawPost(gateway.url('probe'), ping, auth());
      assert.equal(withoutSession.status, 400);
    });
  });

  describe('unix socket and shutdown', () => {
    let gateway: RunningGateway;
    before(async () => {
      gateway = await startGateway([fixtureServer('probe', 'probe-upstream')], { listen: 'unix' });
    });
    after(() => gateway?.stop());

    it('serves on a 0600 socket and keeps the secret in a 0600 file', async () => {
      assert.equal(gateway.ready.listen.type, 'unix');
      const socketPath = gateway.ready.listen.type === 'unix' ? gateway.ready.listen.socketPath : '';
      assert.equal(statSync(socketPath).mode & 0o777, 0o600);
      assert.equal(statSync(join(gateway.dir, 'launch-secret')).mode & 0o777, 0o600);
      assert.equal(statSync(join(gateway.dir, 'run')).mode & 0o777, 0o700);
    });

    it('ends every upstream process, grandchildren included, on shutdown', async () => {
      const socketPath = gateway.ready.listen.type === 'unix' ? gateway.ready.listen.socketPath : '';
      const dispatcher = new Agent({ connect: { socketPath } });
      const client = new Client({ name: 'unix-test', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL('http://localhost/mcp/probe'), {
          requestInit: { headers: { Authorization: `Bearer ${gateway.secret}` } },
          fetch: (url, init) => undiciFetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>,
        }),
      );
      const pid = Number(textOf(await client.callTool({ name: 'pid', arguments: {} })));
      const grandchild = Number(textOf(await client.callTool({ name: 'spawn-grandchild', arguments: {} })));
      assert.ok(isAlive(pid) && isAlive(grandchild));
      await client.close().catch(() => undefined);
      gateway.child.kill('SIGTERM');
      await waitUntil(() => !isAlive(pid) && !isAlive(grandchild), 5_000); // the upstream process group is gone
      await waitUntil(() => gateway.child.exitCode !== null, 5_000);
      assert.equal(gateway.child.exitCode, 0);
      assert.throws(() => statSync(socketPath), /ENOENT/, 'socket removed on shutdown');
      await dispatcher.close();
    });
  });
});
