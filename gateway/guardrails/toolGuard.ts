/**
 * What the gateway enforces about tools themselves, whatever the policy says: a tool is
 * usable only in the definition that was approved (pins), and a call's arguments must fit
 * that definition's input schema. Tool names offered by more than one server are flagged
 * in the log.
 */
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { PinnableTool } from '../../common/policy/toolPins';
import type { Refusal } from '../policy/callGate';
import type { ToolArgumentValidator } from './arguments/toolArgumentValidator';
import type { ToolPinRegistry } from './pinning/toolPinRegistry';
import type { Logger } from '../../common/log/logger';

export class ToolGuard {
  /** tool name -> servers offering it, to flag names that collide (a model may call the wrong one). */
  private readonly offeredBy = new Map<string, Set<string>>();

  constructor(
    private readonly pins: ToolPinRegistry,
    private readonly argumentsCheck: ToolArgumentValidator,
    private readonly log: Logger,
  ) {}

  /** The listed tools a client may see: only those whose definition is approved. */
  approvedTools<T extends PinnableTool>(serverId: string, tools: readonly T[]): T[] {
    this.flagCollisions(serverId, tools);
    const verdicts = this.pins.review(serverId, tools);
    const approved = tools.filter((tool) => verdicts.get(tool.name)?.status === 'approved');
    this.argumentsCheck.learn(serverId, approved.map((tool) => ({ name: tool.name, inputSchema: tool.inputSchema, pin: verdicts.get(tool.name)!.pin })));
    return approved;
  }

  private flagCollisions(serverId: string, tools: readonly PinnableTool[]): void {
    for (const tool of tools) {
      let servers = this.offeredBy.get(tool.name);
      if (!servers) this.offeredBy.set(tool.name, (servers = new Set()));
      if (servers.has(serverId)) continue;
      servers.add(serverId);
      if (servers.size > 1) this.log.warn('tool name offered by more than one server', { tool: tool.name, servers: [...servers] });
    }
  }

  /** Why a tools/call may not run: a changed definition, or arguments that do not fit it. */
  refusal(serverId: string, request: JSONRPCRequest): Refusal | undefined {
    if (request.method !== 'tools/call') return undefined;
    const params = (request.params ?? {}) as { name?: unknown; arguments?: unknown };
    const name = String(params.name ?? '');
    const verdict = this.pins.verdict(serverId, name);
    if (verdict?.status === 'changed') {
      return { message: `Tool "${name}" on "${serverId}" changed since it was approved (${verdict.source === 'policy' ? 'by your org' : 'at first use'}), so Gatehouse hides it until the new definition is approved. Ask your policy admin.` };
    }
    const problem = this.argumentsCheck.problem(serverId, name, params.arguments);
    if (problem) return { message: `Arguments for "${name}" on "${serverId}" do not match the tool's approved input schema: ${problem}.` };
    return undefined;
  }
}
