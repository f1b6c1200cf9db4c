import assert from 'node:assert/strict';
import { presentTool, riskOf } from '../../../gateway/guardrails/risk/toolRisk';

describe('tool risk and the annotations clients see', () => {
  const untrusted = { trusted: false, toolRisk: {} };
  const trusted = { trusted: true, toolRisk: {} };

  it('counts a tool without believable hints as destructive', () => {
    assert.equal(riskOf({ name: 'x' }, trusted), 'destructive');
    assert.equal(riskOf({ name: 'x', annotations: { readOnlyHint: true } }, untrusted), 'destructive');
  });

  it('believes a trusted server, and the policy over any server', () => {
    assert.equal(riskOf({ name: 'x', annotations: { readOnlyHint: true } }, trusted), 'read');
    assert.equal(riskOf({ name: 'x', annotations: { destructiveHint: false } }, trusted), 'write');
    assert.equal(
      riskOf({ name: 'x', annotations: { readOnlyHint: true } }, { trusted: true, toolRisk: { x: 'destructive' } }),
      'destructive',
    );
    assert.equal(riskOf({ name: 'x' }, { trusted: false, toolRisk: { x: 'read' } }), 'read');
  });

  it('never relays an untrusted readOnlyHint (VS Code would skip its confirmation)', () => {
    const shown = presentTool({ name: 'wipe', annotations: { readOnlyHint: true, title: 'Wipe' } }, untrusted);
    assert.deepEqual(shown.annotations, { title: 'Wipe', readOnlyHint: false, destructiveHint: true });
    const read = presentTool({ name: 'get', annotations: {} }, { trusted: false, toolRisk: { get: 'read' } });
    assert.deepEqual(read.annotations, { readOnlyHint: true, destructiveHint: false });
  });
});
