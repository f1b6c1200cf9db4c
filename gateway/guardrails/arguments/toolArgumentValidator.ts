/**
 * Checks a call's arguments against the input schema of the tool definition the user
 * approved, before any policy condition looks at them. Without it, a rule such as
 * `when: args.recursive == true` could be dodged by sending "true" or 1 to an upstream that
 * coerces types. Schemas are compiled once per approved definition (by pin) with the SDK's
 * AJV validator; a schema AJV cannot compile is reported once and not enforced here (the
 * upstream still validates).
 */
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { JsonSchemaType, JsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import type { Pin } from '../../../common/policy/toolPins';
import { describeError, type Logger } from '../../../common/log/logger';

export class ToolArgumentValidator {
  private readonly ajv = new AjvJsonSchemaValidator();
  /** By pin: one compiled validator per approved definition (null when uncompilable). */
  private readonly compiled = new Map<Pin, JsonSchemaValidator<unknown> | null>();
  /** serverId -> tool name -> pin of the approved definition last listed. */
  private readonly current = new Map<string, Map<string, Pin>>();

  constructor(private readonly log: Logger) {}

  /** Remembers the input schemas of the approved tools a server just listed. */
  learn(serverId: string, tools: ReadonlyArray<{ name: string; inputSchema?: unknown; pin: Pin }>): void {
    const byName = new Map<string, Pin>();
    for (const tool of tools) {
      byName.set(tool.name, tool.pin);
      if (this.compiled.has(tool.pin)) continue;
      try {
        this.compiled.set(
          tool.pin,
          tool.inputSchema && typeof tool.inputSchema === 'object' ? this.ajv.getValidator(tool.inputSchema as JsonSchemaType) : null,
        );
      } catch (error) {
        this.compiled.set(tool.pin, null);
        this.log.warn('tool input schema cannot be compiled; its arguments are not checked by the gateway', {
          server: serverId,
          tool: tool.name,
          error: describeError(error),
        });
      }
    }
    this.current.set(serverId, byName);
  }

  /** Why these arguments do not fit the tool's approved schema, or undefined. */
  problem(serverId: string, tool: string, args: unknown): string | undefined {
    const pin = this.current.get(serverId)?.get(tool);
    const validator = pin ? this.compiled.get(pin) : undefined;
    if (!validator) return undefined;
    const result = validator(args ?? {});
    return result.valid ? undefined : result.errorMessage;
  }
}
