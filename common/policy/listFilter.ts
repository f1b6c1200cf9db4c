/**
 * What a list answer may show of a server: only the tools, resources, templates and prompts
 * the user's policy lets them use (and no names that could pass for another kind). Shared
 * by the gateway (gateway/policy/callGate.ts) and the policy server's relay, so a client
 * going around the gateway sees no more than one going through it.
 */
import { ambiguousName, isRecord } from './callSubject';
import type { PolicyDecider } from './policyDecider';

/** The list methods whose results are filtered, and the member holding the items. */
const LISTED: Record<string, { key: string; nameOf: (item: Record<string, unknown>) => string }> = {
  'tools/list': { key: 'tools', nameOf: (t) => String(t.name) },
  'resources/list': { key: 'resources', nameOf: (r) => `resource:${String(r.uri)}` },
  'resources/templates/list': { key: 'resourceTemplates', nameOf: (r) => `resource:${String(r.uriTemplate)}` },
  'prompts/list': { key: 'prompts', nameOf: (p) => `prompt:${String(p.name)}` },
};

export function isFilteredList(method: string): boolean {
  return Object.hasOwn(LISTED, method);
}

/** `result` with only what `decider` lists for the user; no decider (no policy) lists nothing. */
export function filterListResult(
  decider: PolicyDecider | undefined,
  serverId: string,
  method: string,
  result: Record<string, unknown>,
): Record<string, unknown> {
  const listed = Object.hasOwn(LISTED, method) ? LISTED[method] : undefined;
  if (!listed) return result;
  const keep = (name: string) => decider !== undefined && ambiguousName(method, name) === undefined && decider.isToolListed(serverId, name);
  const items = Array.isArray(result[listed.key]) ? (result[listed.key] as unknown[]) : [];
  return { ...result, [listed.key]: items.filter((item) => isRecord(item) && keep(listed.nameOf(item))) };
}
