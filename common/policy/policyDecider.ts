/**
 * Decisions for one user's effective policy: may this call run, must it be confirmed, or
 * is it denied, and by which rule. Built once per bundle into per-server tables (exact tool
 * names, prefixes, wildcards), so a decision is a few map lookups however many rules the
 * org has; the merged candidates of each (server, tool) pair are memoised. Deny wins, then
 * confirm, then allow; nothing matching means deny. A condition that cannot be evaluated
 * makes a deny or confirm rule apply (an agent must not dodge a check by changing an
 * argument's type) and an allow rule not apply.
 */
import { compileCondition, type CompiledCondition, type ConditionContext } from './conditions';
import type { EffectivePolicy, EffectiveRule } from './effectivePolicy';

export interface PolicyDecision {
  effect: 'allow' | 'confirm' | 'deny';
  /** The deciding rule; absent when nothing matched (deny by default). */
  ruleId?: string;
  /** What the user reads: what happened and what to do next. */
  message: string;
  /** Confirm only: the group whose members review the call; absent means the caller confirms it. */
  reviewers?: string;
}

interface IndexedRule {
  rule: EffectiveRule;
  /** Position in the document, so the first matching rule is the one named. */
  order: number;
  condition?: CompiledCondition;
}

interface ToolTable {
  exact: Map<string, IndexedRule[]>;
  prefixes: Array<{ prefix: string; rules: IndexedRule[] }>;
  any: IndexedRule[];
}

interface Candidates {
  deny: IndexedRule[];
  confirm: IndexedRule[];
  allow: IndexedRule[];
}

const MEMO_LIMIT = 100_000;

export class PolicyDecider {
  private readonly byServer = new Map<string, ToolTable>();
  private readonly everyServer: ToolTable = newTable();
  private readonly memo = new Map<string, Candidates>();
  private readonly availableServers: ReadonlySet<string>;
  private readonly user: ConditionContext['user'];

  constructor(readonly policy: EffectivePolicy) {
    this.user = { sub: policy.sub, email: policy.email ?? '', groups: policy.groups };
    this.availableServers = new Set(policy.servers.map((entry) => entry.id));
    for (const [order, rule] of policy.rules.entries()) {
      const compiled = rule.when === undefined ? undefined : compileCondition(rule.when);
      // The policy server validated every condition; one that fails here makes its rule unusable.
      const indexed: IndexedRule = { rule, order, condition: compiled ? (compiled.ok ? compiled.evaluate : () => undefined) : undefined };
      for (const server of rule.servers) {
        let table = server === '*' ? this.everyServer : this.byServer.get(server);
        if (!table) {
          table = newTable();
          this.byServer.set(server, table);
        }
        for (const tool of rule.tools) addToTable(table, tool, indexed);
      }
    }
  }

  /** The decision for a call, conditions evaluated against its arguments. */
  decide(server: string, tool: string, args: Record<string, unknown> = {}): PolicyDecision {
    const candidates = this.candidates(server, tool);
    const context: ConditionContext | undefined =
      candidates.deny.length + candidates.confirm.length + candidates.allow.length > 0
        ? { args, user: this.user, server, tool }
        : undefined;
    for (const entry of candidates.deny) {
      if (!entry.condition || entry.condition(context!) !== false) return this.denied(server, tool, entry.rule);
    }
    for (const entry of candidates.confirm) {
      if (!entry.condition || entry.condition(context!) !== false) {
        const reviewers = entry.rule.reviewers ?? this.policy.guardrails.reviewers;
        return {
          effect: 'confirm',
          ruleId: entry.rule.id,
          message: `Policy rule ${entry.rule.id} asks for confirmation of "${tool}" on "${server}"${entry.rule.reason ? `: ${entry.rule.reason}` : ''}.`,
          ...(reviewers !== undefined ? { reviewers } : {}),
        };
      }
    }
    for (const entry of candidates.allow) {
      if (!entry.condition || entry.condition(context!) === true) {
        return { effect: 'allow', ruleId: entry.rule.id, message: `Allowed by policy rule ${entry.rule.id}.` };
      }
    }
    const conditional = candidates.allow.length + candidates.confirm.length > 0;
    return {
      effect: 'deny',
      message: conditional
        ? `Policy denies "${tool}" on "${server}" with these arguments: no rule's condition holds for them. Ask your policy admin if you need this call.`
        : `No policy rule allows "${tool}" on "${server}" for you (groups: ${this.policy.groups.join(', ') || 'none'}). Ask your policy admin to allow it.`,
    };
  }

  /** Whether `tools/list` shows the tool: some rule may allow it and none denies it outright. */
  isToolListed(server: string, tool: string): boolean {
    const candidates = this.candidates(server, tool);
    if (candidates.deny.some((entry) => !entry.condition)) return false;
    return candidates.allow.length + candidates.confirm.length > 0;
  }

  /** Whether calls of a tool wait for confirmation: always, only when a rule's condition holds, or never. */
  confirmationOf(server: string, tool: string): 'always' | 'sometimes' | 'never' {
    const { confirm } = this.candidates(server, tool);
    if (confirm.some((entry) => !entry.condition)) return 'always';
    return confirm.length > 0 ? 'sometimes' : 'never';
  }

  /** Whether the user may use the server at all (it is in their catalog). */
  isServerAvailable(server: string): boolean {
    return this.availableServers.has(server);
  }

  private denied(server: string, tool: string, rule: EffectiveRule): PolicyDecision {
    return {
      effect: 'deny',
      ruleId: rule.id,
      message: `Policy denies "${tool}" on "${server}" (rule ${rule.id})${rule.reason ? `: ${rule.reason}` : ''}. Ask your policy admin if you need it.`,
    };
  }

  private candidates(server: string, tool: string): Candidates {
    const key = `${server}\u0000${tool}`;
    const cached = this.memo.get(key);
    if (cached) return cached;
    const found: Candidates = { deny: [], confirm: [], allow: [] };
    const seen = new Set<IndexedRule>();
    for (const table of [this.byServer.get(server), this.everyServer]) {
      if (!table) continue;
      collect(table.exact.get(tool), found, seen);
      for (const { prefix, rules } of table.prefixes) if (tool.startsWith(prefix)) collect(rules, found, seen);
      collect(table.any, found, seen);
    }
    for (const list of [found.deny, found.confirm, found.allow]) list.sort((a, b) => a.order - b.order);
    if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
    this.memo.set(key, found);
    return found;
  }
}

function newTable(): ToolTable {
  return { exact: new Map(), prefixes: [], any: [] };
}

function addToTable(table: ToolTable, pattern: string, rule: IndexedRule): void {
  if (pattern === '*') {
    table.any.push(rule);
  } else if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    let entry = table.prefixes.find((p) => p.prefix === prefix);
    if (!entry) {
      entry = { prefix, rules: [] };
      table.prefixes.push(entry);
    }
    entry.rules.push(rule);
  } else {
    const list = table.exact.get(pattern);
    if (list) list.push(rule);
    else table.exact.set(pattern, [rule]);
  }
}

function collect(rules: IndexedRule[] | undefined, into: Candidates, seen: Set<IndexedRule>): void {
  if (!rules) return;
  for (const entry of rules) {
    if (seen.has(entry)) continue;
    seen.add(entry);
    into[entry.rule.effect].push(entry);
  }
}
