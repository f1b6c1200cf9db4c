/**
 * The Audit view's pure parts, outside VS Code: the filter both the webview and the export
 * use (the writers are tested in test/unit/audit/auditExportFormat.unit.test.ts), the
 * check on messages from the webview (untrusted input to the extension host), and the
 * filter's speed over 100,000 events (reported, not asserted: timing targets live in bench).
 */
import assert from 'node:assert/strict';
import { auditMatcher, redactionCount } from '../../../webviews/audit/auditFilter';
import { isAuditViewMessage } from '../../../webviews/audit/auditProtocol';
import { isScopesViewMessage } from '../../../webviews/scopes/scopesProtocol';
import { sampleEvent } from '../audit/auditTestEvents';

describe('Audit view', () => {
  const events = [
    sampleEvent(0, {
      server: 'github',
      tool: 'delete_repo',
      decision: 'confirm-approved',
      reviewer: 'bob@example.com',
      time: '2026-11-30T10:00:00.000Z',
    }),
    sampleEvent(1, { server: 'github', tool: 'list_issues', decision: 'allow', rule: 'engineers-read', time: '2026-11-30T11:00:00.000Z' }),
    sampleEvent(2, {
      server: 'jira',
      tool: 'create_ticket',
      decision: 'deny',
      rule: 'no-jira-writes',
      flags: ['injection:model-instruction'],
      time: '2026-11-30T12:00:00.000Z',
    }),
  ];

  describe('filter', () => {
    const ids = (filter: Parameters<typeof auditMatcher>[0]) => events.filter(auditMatcher(filter)).map((e) => e.tool);

    it('matches everything with no filter, and narrows by server, tool, decision and time', () => {
      assert.deepEqual(ids({}), ['delete_repo', 'list_issues', 'create_ticket']);
      assert.deepEqual(ids({ server: 'github' }), ['delete_repo', 'list_issues']);
      assert.deepEqual(ids({ tool: 'create_ticket' }), ['create_ticket']);
      assert.deepEqual(ids({ decision: 'confirm-approved' }), ['delete_repo']);
      assert.deepEqual(ids({ sinceMs: Date.parse('2026-11-30T10:30:00Z') }), ['list_issues', 'create_ticket']);
      assert.deepEqual(ids({ server: 'github', decision: 'deny' }), []);
    });

    it('searches text case-insensitively through rule, reviewer, flags and names', () => {
      assert.deepEqual(ids({ text: 'BOB@' }), ['delete_repo']);
      assert.deepEqual(ids({ text: 'no-jira' }), ['create_ticket']);
      assert.deepEqual(ids({ text: 'injection:model' }), ['create_ticket']);
      assert.deepEqual(ids({ text: '  ' }), ['delete_repo', 'list_issues', 'create_ticket'], 'blank text filters nothing');
      assert.deepEqual(ids({ text: 'nowhere-to-be-found' }), []);
    });

    it('counts redactions', () => {
      assert.equal(redactionCount(sampleEvent(1, { redactions: { 'aws-access-key': 2, 'github-token': 1 } })), 3);
      assert.equal(redactionCount(sampleEvent(1, { redactions: {} })), 0);
    });

    it('filters 100,000 events by text (time reported)', function () {
      this.timeout(20_000);
      const many = Array.from({ length: 100_000 }, (_, n) => sampleEvent(n, { rule: `rule-${n % 1000}` }));
      const first = performance.now();
      const shown = many.filter(auditMatcher({ text: 'rule-999' }));
      const firstMs = performance.now() - first;
      const again = performance.now();
      many.filter(auditMatcher({ text: 'rule-99', server: 'github' }));
      const againMs = performance.now() - again;
      assert.equal(shown.length, 100);
      console.log(
        `      filter over 100,000 events: ${firstMs.toFixed(0)} ms first (builds the search text), ${againMs.toFixed(0)} ms after`,
      );
    });
  });

  describe('messages from the webviews', () => {
    it('accepts only well-formed ones', () => {
      assert.ok(isAuditViewMessage({ type: 'ready' }));
      assert.ok(isAuditViewMessage({ type: 'export', format: 'csv', filter: { server: 'github', decision: 'deny', sinceMs: 5 } }));
      assert.ok(isAuditViewMessage({ type: 'rendered', shown: 1, total: 2, filterMs: 0.5 }));
      for (const bad of [
        null,
        'ready',
        { type: 'export', format: 'xlsx', filter: {} },
        { type: 'export', format: 'csv' },
        { type: 'export', format: 'csv', filter: { decision: 'maybe' } },
        { type: 'export', format: 'csv', filter: { server: 'x'.repeat(2000) } },
        { type: 'export', format: 'csv', filter: { sinceMs: 'yesterday' } },
        { type: 'rendered', shown: 1.5, total: 2, filterMs: 0 },
        { type: 'run', command: 'rm' },
      ])
        assert.equal(isAuditViewMessage(bad), false, JSON.stringify(bad));
      assert.ok(isScopesViewMessage({ type: 'ready' }));
      assert.equal(isScopesViewMessage({ type: 'revoke' }), false);
      assert.ok(isScopesViewMessage({ type: 'signOut', server: 'notes' }));
      for (const bad of [
        { type: 'signOut' },
        { type: 'signOut', server: '../notes' },
        { type: 'signOut', server: 'notes', all: true },
        { type: 'ready', extra: 1 },
      ]) {
        assert.equal(isScopesViewMessage(bad), false, JSON.stringify(bad));
      }
    });
  });
});
