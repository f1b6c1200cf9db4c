import assert from 'node:assert/strict';
import { compileEffectivePolicy } from '../../../common/policy/effectivePolicy';
import { PolicyDecider } from '../../../common/policy/policyDecider';
import { parsePolicyDocument } from '../../../common/policy/policyDocument';
import { PolicyGate } from '../../../gateway/policy/callGate';
import type { PolicySource } from '../../../gateway/policy/policySource';

const POLICY = parsePolicyDocument(`
version: 1
org: t
admins: [a]
groups: [{ id: a, match: [{ user: root }] }]
servers:
  - { id: files, title: Files, transport: { type: stdio, command: /bin/files } }
rules:
  - { id: workspace, effect: allow, principals: ["*"], servers: [files], tools: ["resource:file:///workspace/*", "prompt:*", read_file] }
`, '/t.yaml');

/** The gate reads only `state` from its source; this one holds a fixed, verified policy. */
function gateFor(expiresAt = Date.now() + 60_000): PolicyGate {
  const decider = new PolicyDecider(compileEffectivePolicy(POLICY, 1, { sub: 'dev', issuer: 'https://idp', claims: {} }));
  return new PolicyGate({ state: { decider, version: 1, expiresAt } } as unknown as PolicySource);
}

const call = (method: string, params: Record<string, unknown>) => ({ jsonrpc: '2.0' as const, id: 1, method, params });

describe('policy gate', () => {
  it('allows what a rule names and refuses the rest with the reason', () => {
    const gate = gateFor();
    assert.equal(gate.check('files', call('resources/read', { uri: 'file:///workspace/a.txt' })), undefined);
    assert.equal(gate.check('files', call('tools/call', { name: 'read_file', arguments: {} })), undefined);
    assert.match(gate.check('files', call('tools/call', { name: 'write_file', arguments: {} }))!.message, /No policy rule allows "write_file"/);
  });

  it('refuses resource URIs that could step outside an allowed prefix', () => {
    const gate = gateFor();
    for (const uri of ['file:///workspace/../etc/shadow', 'file:///workspace/%2e%2e/etc/shadow', 'file:///workspace/a%2Fb', 'file:///workspace/./x']) {
      assert.match(gate.check('files', call('resources/read', { uri }))?.message ?? 'allowed', /dot segments or encoded separators/, uri);
    }
  });

  it('refuses and hides tools named like resources or prompts', () => {
    const gate = gateFor();
    assert.match(gate.check('files', call('tools/call', { name: 'prompt:wipe_disk', arguments: {} }))!.message, /may not start with/);
    const listed = gate.filterResult('files', 'tools/list', { tools: [{ name: 'read_file' }, { name: 'prompt:wipe_disk' }] });
    assert.deepEqual((listed.tools as Array<{ name: string }>).map((t) => t.name), ['read_file']);
  });
});
