import assert from 'node:assert/strict';
import { compileEffectivePolicy } from '../../../common/policy/effectivePolicy';
import { PolicyDecider } from '../../../common/policy/policyDecider';
import { parsePolicyDocument } from '../../../common/policy/policyDocument';
import { PolicyGate } from '../../../gateway/policy/callGate';
import type { PolicySource } from '../../../gateway/policy/policySource';

const POLICY = parsePolicyDocument(
  `
version: 1
org: t
admins: [a]
groups: [{ id: a, match: [{ user: root }] }, { id: leads, match: [{ user: lead }] }]
servers:
  - { id: files, title: Files, transport: { type: stdio, command: /bin/files } }
rules:
  - { id: workspace, effect: allow, principals: ["*"], servers: [files], tools: ["resource:file:///workspace/*", "prompt:*", read_file] }
  - { id: deletes, effect: confirm, principals: ["*"], servers: [files], tools: [delete_file], reason: deletes are final }
  - { id: wipes, effect: confirm, principals: ["*"], servers: [files], tools: [wipe], reviewers: leads }
  - { id: big-reads, effect: confirm, principals: ["*"], servers: [files], tools: [read_file], when: 'args.size > 100' }
guardrails: { confirmationTimeoutSeconds: 30 }
`,
  '/t.yaml',
);

/** The gate reads only `state` from its source; this one holds a fixed, verified policy. */
function gateFor(expiresAt = Date.now() + 60_000): PolicyGate {
  const decider = new PolicyDecider(compileEffectivePolicy(POLICY, 1, { sub: 'dev', issuer: 'https://idp', claims: {} }));
  return new PolicyGate({ state: { decider, version: 1, expiresAt } } as unknown as PolicySource);
}

const call = (method: string, params: Record<string, unknown>) => ({ jsonrpc: '2.0' as const, id: 1, method, params });

/** The refusal message, or undefined when the gate lets the request through. */
function refusal(gate: PolicyGate, server: string, request: ReturnType<typeof call>): string | undefined {
  const decision = gate.decide(server, request);
  return decision.effect === 'deny' ? decision.message : undefined;
}

describe('policy gate', () => {
  it('allows what a rule names and refuses the rest with the reason', () => {
    const gate = gateFor();
    assert.deepEqual(gate.decide('files', call('resources/read', { uri: 'file:///workspace/a.txt' })), {
      effect: 'allow',
      ruleId: 'workspace',
    });
    assert.equal(refusal(gate, 'files', call('tools/call', { name: 'read_file', arguments: {} })), undefined);
    assert.match(refusal(gate, 'files', call('tools/call', { name: 'write_file', arguments: {} }))!, /No policy rule allows "write_file"/);
  });

  it('refuses resource URIs that could step outside an allowed prefix', () => {
    const gate = gateFor();
    for (const uri of [
      'file:///workspace/../etc/shadow',
      'file:///workspace/%2e%2e/etc/shadow',
      'file:///workspace/a%2Fb',
      'file:///workspace/./x',
    ]) {
      assert.match(refusal(gate, 'files', call('resources/read', { uri })) ?? 'allowed', /dot segments or encoded separators/, uri);
    }
  });

  it('refuses and hides tools named like resources or prompts', () => {
    const gate = gateFor();
    assert.match(refusal(gate, 'files', call('tools/call', { name: 'prompt:wipe_disk', arguments: {} }))!, /may not start with/);
    const listed = gate.filterResult('files', 'tools/list', { tools: [{ name: 'read_file' }, { name: 'prompt:wipe_disk' }] });
    assert.deepEqual(
      (listed.tools as Array<{ name: string }>).map((t) => t.name),
      ['read_file'],
    );
  });

  it('asks for confirmation with what a reviewer needs: rule, reason, timeout, and the reviewer group when named', () => {
    const gate = gateFor();
    const own = gate.decide('files', call('tools/call', { name: 'delete_file', arguments: { path: '/w/a' } }));
    assert.equal(own.effect, 'confirm');
    if (own.effect !== 'confirm') return;
    assert.equal(own.ruleId, 'deletes');
    assert.equal(own.reviewers, undefined, 'no group named: the caller confirms');
    assert.equal(own.timeoutMs, 30_000);
    assert.deepEqual(own.args, { path: '/w/a' });
    assert.match(own.message, /deletes are final/);
    const second = gate.decide('files', call('tools/call', { name: 'wipe', arguments: {} }));
    assert.equal(second.effect === 'confirm' ? second.reviewers : 'not confirm', 'leads');
  });

  it('says for the sidebar whether a tool always, sometimes or never waits for confirmation', () => {
    const gate = gateFor();
    assert.equal(gate.toolEffect('files', 'delete_file'), 'confirm');
    assert.equal(gate.toolEffect('files', 'read_file'), 'confirm-sometimes');
    assert.equal(gate.toolEffect('files', 'prompt:any'), 'allow');
  });
});
