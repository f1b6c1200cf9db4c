/**
 * The session bridge (gateway/upstream/sessionBridge.ts): what a 2025-era client's session
 * needs from a 2026-07-28 server, with the server's side played by plain functions that
 * record what would be sent (the whole path runs against a real SDK v2 server in
 * test/integration/protocolEras.test.ts).
 */
import assert from 'node:assert/strict';
import { SessionBridge } from '../../../gateway/upstream/sessionBridge';
import { SUBSCRIPTION_ID_META, type ModernEnvelope } from '../../../gateway/upstream/modernProtocol';

function bridge(capabilities: Record<string, unknown> = { tools: { listChanged: true }, resources: { subscribe: true } }) {
  const envelope: ModernEnvelope = { clientCapabilities: {}, clientInfo: { name: 'vscode', version: '1' } };
  const listens: Array<{ id: number; filter: unknown }> = [];
  const stopped: number[] = [];
  /** Ends a listen stream as the server would (its reply arrives). */
  const enders = new Map<number, () => void>();
  let nextId = 1;
  const sessionBridge = new SessionBridge(envelope, capabilities, {
    listen: (params) => {
      const id = nextId++;
      listens.push({ id, filter: params.notifications });
      // A listen stream stays open until the server ends it.
      return { upstreamId: id, reply: new Promise<void>((resolve) => enders.set(id, resolve)) };
    },
    stop: (id) => void stopped.push(id),
    alive: () => true,
  });
  return { sessionBridge, envelope, listens, stopped, enders };
}

describe('session bridge for 2025-era clients of 2026-07-28 servers', () => {
  it('answers ping itself and asks for the level set with logging/setLevel on later requests', () => {
    const { sessionBridge, envelope } = bridge();
    assert.deepEqual(sessionBridge.answer('ping', undefined), { result: {} });
    assert.deepEqual(sessionBridge.answer('logging/setLevel', { level: 'warning' }), { result: {} });
    assert.equal(envelope.logLevel, 'warning');
    assert.equal((sessionBridge.answer('logging/setLevel', { level: 7 }) as { error: { code: number } }).error.code, -32602);
    assert.equal(envelope.logLevel, 'warning', 'a bad level changes nothing');
  });

  it('listens for what the server can announce, and listens again (closing the old stream) when subscriptions change', () => {
    const { sessionBridge, listens, stopped } = bridge();
    sessionBridge.follow();
    assert.deepEqual(listens, [{ id: 1, filter: { toolsListChanged: true } }]);
    sessionBridge.answer('resources/subscribe', { uri: 'test://a' });
    assert.deepEqual(listens.at(-1), { id: 2, filter: { toolsListChanged: true, resourceSubscriptions: ['test://a'] } });
    assert.deepEqual(stopped, [1], 'the old stream is closed once the new one is asked for');
    sessionBridge.answer('resources/subscribe', { uri: 'test://a' });
    assert.equal(listens.length, 2, 'subscribing twice changes nothing');
    sessionBridge.answer('resources/unsubscribe', { uri: 'test://a' });
    assert.deepEqual(listens.at(-1), { id: 3, filter: { toolsListChanged: true } });
    assert.deepEqual(stopped, [1, 2]);
  });

  it('opens the stream again when the server ends it, but not one it closed itself', async () => {
    const { sessionBridge, listens, stopped, enders } = bridge();
    sessionBridge.follow();
    enders.get(1)!();
    for (let i = 0; i < 60 && listens.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(listens.at(-1), { id: 2, filter: { toolsListChanged: true } }, 'opened again after the server ended it');
    assert.deepEqual(stopped, [], 'a stream the server ended is not closed again');
    sessionBridge.answer('resources/subscribe', { uri: 'test://a' }); // replaces stream 2 with stream 3
    enders.get(2)!();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(listens.length, 3, 'the replaced stream ending changes nothing');
    sessionBridge.answer('resources/unsubscribe', { uri: 'test://a' }); // stream 4; no reopen timer left behind
  });

  it('refuses subscriptions to a server that offers none, and a subscription without a URI', () => {
    const none = bridge({ tools: {} });
    assert.equal((none.sessionBridge.answer('resources/subscribe', { uri: 'test://a' }) as { error: { code: number } }).error.code, -32601);
    assert.equal(none.listens.length, 0);
    const some = bridge();
    assert.equal((some.sessionBridge.answer('resources/subscribe', {}) as { error: { code: number } }).error.code, -32602);
  });

  it("relays its own streams' notifications without the subscription id, drops their acknowledgement, passes others untouched", () => {
    const { sessionBridge } = bridge();
    sessionBridge.follow();
    const ack = {
      jsonrpc: '2.0' as const,
      method: 'notifications/subscriptions/acknowledged',
      params: { _meta: { [SUBSCRIPTION_ID_META]: 1 } },
    };
    assert.equal(sessionBridge.relayed(ack), undefined);
    const change = {
      jsonrpc: '2.0' as const,
      method: 'notifications/tools/list_changed',
      params: { _meta: { [SUBSCRIPTION_ID_META]: 1 } },
    };
    assert.deepEqual(sessionBridge.relayed(change), { jsonrpc: '2.0', method: 'notifications/tools/list_changed', params: {} });
    const foreign = { ...change, params: { _meta: { [SUBSCRIPTION_ID_META]: 99 } } };
    assert.equal(sessionBridge.relayed(foreign), foreign, "another stream's notification is not the bridge's to change");
    const progress = { jsonrpc: '2.0' as const, method: 'notifications/progress', params: { progressToken: 't', progress: 1 } };
    assert.equal(sessionBridge.relayed(progress), progress);
  });
});
