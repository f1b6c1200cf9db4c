/**
 * Which tool definitions this user has approved, per server. A pin from the org policy
 * wins; otherwise the first definition the gateway relays is recorded (trust on first
 * use) in a 0600 file, so a later change survives restarts. A tool whose definition
 * differs from its pin is hidden from `tools/list` and refused on `tools/call` until it is
 * approved again; the change is logged with both pins.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pinOfTool, type Pin, type PinnableTool } from '../../../common/policy/toolPins';
import { writeSecretFile } from '../../../common/fs/privateFiles';
import type { Logger } from '../../../common/log/logger';

export type PinVerdict = { status: 'approved'; pin: Pin } | { status: 'changed'; pin: Pin; approved: Pin; source: 'policy' | 'first-use' };

export class ToolPinRegistry {
  /** serverId -> tool name -> approved pin (first use). */
  private readonly firstUse = new Map<string, Map<string, Pin>>();
  /** serverId -> tool name -> verdict of the definition last relayed. */
  private readonly lastSeen = new Map<string, Map<string, PinVerdict>>();

  constructor(
    private readonly directory: string,
    /** Pins the org approved, by server and tool (from the policy in force). */
    private readonly orgPins: (serverId: string, tool: string) => Pin | undefined,
    private readonly log: Logger,
  ) {}

  /** Judges each listed tool against its pin; records first-use pins. */
  review(serverId: string, tools: readonly PinnableTool[]): Map<string, PinVerdict> {
    const recorded = this.recorded(serverId);
    const verdicts = new Map<string, PinVerdict>();
    let learned = false;
    for (const tool of tools) {
      const pin = pinOfTool(tool);
      const orgPin = this.orgPins(serverId, tool.name);
      const approved = orgPin ?? recorded.get(tool.name);
      if (approved === undefined) {
        recorded.set(tool.name, pin);
        learned = true;
        verdicts.set(tool.name, { status: 'approved', pin });
      } else if (approved === pin) {
        verdicts.set(tool.name, { status: 'approved', pin });
      } else {
        verdicts.set(tool.name, { status: 'changed', pin, approved, source: orgPin ? 'policy' : 'first-use' });
        this.log.warn('tool definition changed since approval; hiding it', {
          server: serverId,
          tool: tool.name,
          approved,
          now: pin,
          source: orgPin ? 'policy' : 'first-use',
        });
      }
    }
    this.lastSeen.set(serverId, verdicts);
    if (learned) this.save(serverId, recorded);
    return verdicts;
  }

  /** The verdict for a tool as last listed; undefined if it was never listed. */
  verdict(serverId: string, tool: string): PinVerdict | undefined {
    return this.lastSeen.get(serverId)?.get(tool);
  }

  private recorded(serverId: string): Map<string, Pin> {
    let pins = this.firstUse.get(serverId);
    if (pins) return pins;
    pins = new Map();
    try {
      const stored = JSON.parse(readFileSync(this.file(serverId), 'utf8')) as Record<string, unknown>;
      for (const [name, pin] of Object.entries(stored))
        if (typeof pin === 'string' && pin.startsWith('sha256:')) pins.set(name, pin as Pin);
    } catch {
      // no pins recorded yet for this server
    }
    this.firstUse.set(serverId, pins);
    return pins;
  }

  private save(serverId: string, pins: Map<string, Pin>): void {
    writeSecretFile(this.file(serverId), JSON.stringify(Object.fromEntries(pins), null, 2));
  }

  private file(serverId: string): string {
    return join(this.directory, `pins-${serverId}.json`);
  }
}
