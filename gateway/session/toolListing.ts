/**
 * What a client sees of a server's `tools/list`, and what the audit and the sidebar hear
 * about it: only approved definitions (pins), poisoned-looking ones hidden when the policy
 * blocks injection, annotations rewritten to the risk the gateway believes (clients decide
 * whom to ask from them), each first-noticed change or flag as an audit notice, and a
 * summary per tool for the extension's sidebar.
 */
import type { ToolSummary } from '../../common/control/controlProtocol';
import type { ServerConfig } from '../config/gatewayConfig';
import type { PinnableTool } from '../../common/policy/toolPins';
import type { Logger } from '../../common/log/logger';
import { presentTool, riskOf, type RiskSource, type ToolRisk } from '../guardrails/risk/toolRisk';
import type { ToolGuard } from '../guardrails/toolGuard';
import type { CallGate } from '../policy/callGate';

export type ListedTool = PinnableTool & { annotations?: Record<string, unknown> };

/** A tool definition the audit must hear about: changed since approval, or flagged. */
export interface DefinitionNotice {
  tool: string;
  flags: string[];
  hidden: boolean;
}

export class ToolListing {
  /** Each tool's risk as last listed, for confirmation prompts. */
  private readonly risks = new Map<string, ToolRisk>();

  /** The listing of a configured server: its risks from the policy's catalog and its trust. */
  static forServer(
    server: ServerConfig,
    gate: CallGate,
    tools: ToolGuard,
    log: Logger,
    toolsListed?: (serverId: string, tools: ToolSummary[]) => void,
  ): ToolListing {
    const risk: RiskSource = {
      trusted: server.trusted,
      toolRisk: Object.fromEntries(
        Object.entries(server.tools).flatMap(([name, settings]) => (settings.risk ? [[name, settings.risk]] : [])),
      ),
    };
    return new ToolListing(server.id, risk, gate, tools, log, toolsListed);
  }

  constructor(
    private readonly serverId: string,
    private readonly risk: RiskSource,
    private readonly gate: CallGate,
    private readonly tools: ToolGuard,
    private readonly log: Logger,
    private readonly toolsListed: ((serverId: string, tools: ToolSummary[]) => void) | undefined,
  ) {}

  /** `listed`: the tools the policy lets this user see, as the upstream defined them. */
  present(listed: ListedTool[]): { tools: ListedTool[]; notices: DefinitionNotice[] } {
    const review = this.tools.review(this.serverId, listed);
    this.risks.clear();
    for (const tool of listed) this.risks.set(tool.name, riskOf(tool, this.risk));
    const block = this.gate.injectionMode() === 'block';
    const flagsOf = new Map(review.flagged.map((entry) => [entry.tool, entry.flags]));
    const notices: DefinitionNotice[] = review.newlyChanged.map((tool) => ({ tool, flags: ['tool-definition-changed'], hidden: true }));
    for (const { tool, flags, newly } of review.flagged) {
      if (!newly) continue;
      this.log.warn('tool definition raises poisoning flags', { tool: tool.name, flags, hidden: block });
      notices.push({ tool: tool.name, flags, hidden: block });
    }
    this.toolsListed?.(this.serverId, [
      ...review.approved.map((tool) => this.summary(tool, false, flagsOf.get(tool) ?? [])),
      ...listed.filter((tool) => review.changed.includes(tool.name)).map((tool) => this.summary(tool, true, ['tool-definition-changed'])),
    ]);
    const shown = block ? review.approved.filter((tool) => !flagsOf.has(tool)) : review.approved;
    return { tools: shown.map((tool) => presentTool(tool, this.risk)), notices };
  }

  /** The risk the gateway believes for a tool: as listed, else from the policy alone (destructive when it says nothing). */
  riskOf(toolName: string): ToolRisk {
    return this.risks.get(toolName) ?? riskOf({ name: toolName }, { ...this.risk, trusted: false });
  }

  private summary(tool: ListedTool, changed: boolean, flags: string[]): ToolSummary {
    return {
      name: tool.name,
      ...(typeof tool.title === 'string' ? { title: tool.title } : {}),
      risk: riskOf(tool, this.risk),
      policy: this.gate.toolEffect(this.serverId, tool.name),
      changed,
      flags,
    };
  }
}
