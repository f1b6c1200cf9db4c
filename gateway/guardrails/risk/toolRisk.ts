/**
 * What counts as destructive, and what the client is told. VS Code asks the user before
 * any tool without `readOnlyHint`, so the hints the gateway relays decide who gets asked:
 * a per-tool risk from the policy wins; otherwise the server's own annotations, believed
 * only for servers the policy marks trusted; a tool with no believable hint counts as
 * destructive. An untrusted server's `readOnlyHint` never reaches the client.
 */
export type ToolRisk = 'read' | 'write' | 'destructive';

export interface RiskSource {
  trusted: boolean;
  /** Per-tool risk from the org policy's catalog. */
  toolRisk: Readonly<Record<string, ToolRisk>>;
}

interface Annotated {
  name: string;
  annotations?: Record<string, unknown>;
}

export function riskOf(tool: Annotated, source: RiskSource): ToolRisk {
  const fromPolicy = source.toolRisk[tool.name];
  if (fromPolicy) return fromPolicy;
  if (!source.trusted) return 'destructive';
  const hints = tool.annotations ?? {};
  if (hints.readOnlyHint === true) return 'read';
  if (hints.destructiveHint === false) return 'write';
  return 'destructive';
}

/** The tool as the client should see it: annotations rewritten to the risk the gateway believes. */
export function presentTool<T extends Annotated>(tool: T, source: RiskSource): T {
  const risk = riskOf(tool, source);
  const { readOnlyHint: _readOnly, destructiveHint: _destructive, ...rest } = tool.annotations ?? {};
  const annotations =
    risk === 'read'
      ? { ...rest, readOnlyHint: true, destructiveHint: false }
      : { ...rest, readOnlyHint: false, destructiveHint: risk === 'destructive' };
  return { ...tool, annotations };
}
