import assert from 'node:assert/strict';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { SessionEventStore } from '../../../gateway/http/sessionEventStore';

const note = (n: number): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { n } });

async function replay(store: SessionEventStore, after: string): Promise<{ stream: string; ns: unknown[] }> {
  const ns: unknown[] = [];
  const stream = await store.replayEventsAfter(after, {
    send: async (_id, message) => {
      ns.push((message as unknown as { params: { n: number } }).params.n);
    },
  });
  return { stream, ns };
}

describe('session event store (SSE resumption)', () => {
  it('replays only the later events of the same stream', async () => {
    const store = new SessionEventStore();
    const a1 = await store.storeEvent('a', note(1));
    await store.storeEvent('b', note(2));
    await store.storeEvent('a', note(3));
    await store.storeEvent('a', note(4));
    assert.deepEqual(await replay(store, a1), { stream: 'a', ns: [3, 4] });
    assert.equal(await store.getStreamIdForEventId(a1), 'a');
  });

  it('forgets the oldest events beyond its capacity and refuses unknown ids', async () => {
    const store = new SessionEventStore(3);
    const first = await store.storeEvent('a', note(1));
    const second = await store.storeEvent('a', note(2));
    await store.storeEvent('a', note(3));
    await store.storeEvent('a', note(4));
    await assert.rejects(replay(store, first), /unknown or expired/);
    assert.deepEqual((await replay(store, second)).ns, [3, 4]);
    await assert.rejects(replay(store, 'nope'), /unknown or expired/);
  });
});
