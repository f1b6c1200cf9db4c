/** The list cache for 2026-07-28 servers (gateway/upstream/listCache.ts), with a clock the test moves. */
import assert from 'node:assert/strict';
import { ListCache } from '../../../gateway/upstream/listCache';

describe('list cache for 2026-07-28 servers', () => {
  let now = 1_000;
  const cache = () => new ListCache(() => now);
  const complete = (ttlMs?: number) => ({ resultType: 'complete', ...(ttlMs !== undefined ? { ttlMs } : {}), cacheScope: 'private' });

  it("keeps a list for the ttlMs the server gave, whatever the request's _meta", () => {
    const lists = cache();
    lists.put('tools/list', { _meta: { progressToken: 1 } }, complete(500), { tools: ['a'] });
    assert.deepEqual(lists.get('tools/list', { _meta: { progressToken: 2 } }), { tools: ['a'] });
    assert.equal(lists.get('tools/list', { cursor: 'next' }), undefined, 'another page is another question');
    now += 501;
    assert.equal(lists.get('tools/list', {}), undefined, 'gone once its time is up');
  });

  it('keeps nothing without a positive ttlMs, nothing but complete results, nothing for calls', () => {
    const lists = cache();
    lists.put('tools/list', {}, complete(0), { tools: [] });
    lists.put('prompts/list', {}, complete(), { prompts: [] });
    lists.put('resources/list', {}, { resultType: 'input_required', ttlMs: 500 }, { resources: [] });
    lists.put('tools/call', { name: 'x' }, complete(500), { content: [] });
    for (const method of ['tools/list', 'prompts/list', 'resources/list']) assert.equal(lists.get(method, {}), undefined);
    assert.equal(lists.get('tools/call', { name: 'x' }), undefined);
  });

  it('forgets what a change notification names: the list, or reads of the updated resource only', () => {
    const lists = cache();
    lists.put('tools/list', {}, complete(5_000), { tools: [] });
    lists.put('prompts/list', {}, complete(5_000), { prompts: [] });
    lists.put('resources/read', { uri: 'a://1' }, complete(5_000), { contents: [1] });
    lists.put('resources/read', { uri: 'a://2' }, complete(5_000), { contents: [2] });
    lists.changed({ method: 'notifications/tools/list_changed' });
    lists.changed({ method: 'notifications/resources/updated', params: { uri: 'a://1' } });
    assert.equal(lists.get('tools/list', {}), undefined);
    assert.ok(lists.get('prompts/list', {}));
    assert.equal(lists.get('resources/read', { uri: 'a://1' }), undefined);
    assert.ok(lists.get('resources/read', { uri: 'a://2' }));
  });
});
