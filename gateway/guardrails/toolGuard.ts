/**
 * What the gateway enforces about tools themselves, whatever the policy says: a tool is
 * usable only in the definition that was approved (pins), and a call's arguments must fit
 * that definition's input schema. It also raises the audit flags about tools: a name
 * offered by more than one server (`tool-name-collision`: a model may call the shadowing
 * one), a description naming another server's tool (`cross-server-reference`: a classic
 * poisoning move), and a definition that changed since approval (`tool-definition-changed`).
 */
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { PinnableTool } from '../../common/policy/toolPins';
import type { Refusal } from '../policy/callGate';
import type { ToolArgumentValidator } from './arguments/toolArgumentValidator';
import type { ToolPinRegistry } from './pinning/toolPinRegistry';
import type { Logger } from '../../common/log/logger';
import { scanValue } from './injection/injectionScanner';

export interface ToolReview<T extends PinnableTool> {
  /** Tools whose definition is approved; only these reach clients. */
  approved: T[];
  /** Tools whose definition changed since approval (hidden from clients). */
  changed: string[];
  /** Of those, the ones this listing noticed first. */
  newlyChanged: string[];
  /** Approved tools whose definition raises poisoning flags; `newly` the first time this definition does. */
  flagged: Array<{ tool: T; flags: string[]; newly: boolean }>;
}

/** What the tool checks say about one request: why it may not run, if so, and the flags it carries. */
export interface ToolCheck {
  refusal?: Refusal;
  flags: readonly string[];
}

const NOTHING_TO_SAY: ToolCheck = Object.freeze({ flags: Object.freeze([]) as readonly string[] });

export class ToolGuard {
  /** tool name -> servers offering it, to flag names that collide (a model may call the wrong one). */
  private readonly offeredBy = new Map<string, Set<string>>();
  /** Flagged definitions already reported (server, tool, pin), so each is audited once per run. */
  private readonly noticed = new Set<string>();

  constructor(
    private readonly pins: ToolPinRegistry,
    private readonly argumentsCheck: ToolArgumentValidator,
    private readonly log: Logger,
  ) {}

  /**
   * The listed tools a client may see (only those whose definition is approved), and the
   * tools whose change was first noticed by this listing (to be audited once, not on
   * every list).
   */
  review<T extends PinnableTool>(serverId: string, tools: readonly T[]): ToolReview<T> {
    this.flagCollisions(serverId, tools);
    const before = new Map(tools.map((tool) => [tool.name, this.pins.verdict(serverId, tool.name)]));
    const verdicts = this.pins.review(serverId, tools);
    const approved = tools.filter((tool) => verdicts.get(tool.name)?.status === 'approved');
    this.argumentsCheck.learn(
      serverId,
      approved.map((tool) => ({ name: tool.name, inputSchema: tool.inputSchema, pin: verdicts.get(tool.name)!.pin })),
    );
    const newlyChanged = tools
      .filter((tool) => {
        const now = verdicts.get(tool.name);
        const earlier = before.get(tool.name);
        return now?.status === 'changed' && !(earlier?.status === 'changed' && earlier.pin === now.pin);
      })
      .map((tool) => tool.name);
    const flagged = approved.flatMap((tool) => {
      const flags = [
        ...scanValue(tool).map((flag) => `injection:${flag}`),
        ...(this.crossServerReference(serverId, tool) ? ['cross-server-reference'] : []),
      ];
      if (flags.length === 0) return [];
      const key = `${serverId}\u0000${tool.name}\u0000${verdicts.get(tool.name)!.pin}`;
      const newly = !this.noticed.has(key);
      this.noticed.add(key);
      return [{ tool, flags, newly }];
    });
    const changed = tools.filter((tool) => verdicts.get(tool.name)?.status === 'changed').map((tool) => tool.name);
    return { approved, changed, newlyChanged, flagged };
  }

  /**
   * Whether a tool's description names a tool only other servers offer, such as "before
   * using this, call send_email": tools should not steer the model to other servers. Names
   * shorter than 5 characters are ignored; they are too often plain words.
   */
  crossServerReference(serverId: string, tool: PinnableTool): boolean {
    const text = [tool.title, tool.description].filter((part) => typeof part === 'string').join(' ');
    if (text.trim().length === 0) return false;
    // Tool names are made of letters, digits, `_` and `-`: compare whole words, no regex per name.
    const words = new Set(text.split(/[^A-Za-z0-9_-]+/));
    for (const word of words) {
      const servers = word.length >= 5 ? this.offeredBy.get(word) : undefined;
      if (servers && !servers.has(serverId)) return true;
    }
    return false;
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

  /**
   * The gateway's own checks of a `tools/call`, whatever the policy says: why it may not run
   * (a definition changed since approval, arguments that do not fit the approved schema),
   * and the audit flags it carries either way (a name more than one server offers).
   */
  check(serverId: string, request: JSONRPCRequest): ToolCheck {
    if (request.method !== 'tools/call') return NOTHING_TO_SAY;
    const params = (request.params ?? {}) as { name?: unknown; arguments?: unknown };
    const name = String(params.name ?? '');
    const servers = this.offeredBy.get(name);
    const flags = servers !== undefined && servers.size > 1 && servers.has(serverId) ? ['tool-name-collision'] : [];
    const verdict = this.pins.verdict(serverId, name);
    if (verdict?.status === 'changed') {
      const by = verdict.source === 'policy' ? 'by your org' : 'at first use';
      return {
        flags,
        refusal: {
          flags: ['tool-definition-changed'],
          message: `Tool "${name}" on "${serverId}" changed since it was approved (${by}), so Gatehouse hides it until the new definition is approved. Ask your policy admin.`,
        },
      };
    }
    const problem = this.argumentsCheck.problem(serverId, name, params.arguments);
    if (problem)
      return {
        flags,
        refusal: { message: `Arguments for "${name}" on "${serverId}" do not match the tool's approved input schema: ${problem}.` },
      };
    return flags.length > 0 ? { flags } : NOTHING_TO_SAY;
  }
}
