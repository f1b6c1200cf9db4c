/**
 * Rule conditions in CEL (Common Expression Language), evaluated by @marcbachmann/cel-js.
 * A condition sees `args` (the call's arguments), `user` ({sub, email, groups}),
 * `server` and `tool`, and must be boolean. Compiled once when a policy arrives.
 */
import { Environment } from '@marcbachmann/cel-js';

const environment = new Environment({ unlistedVariablesAreDyn: false })
  .registerVariable('args', 'map')
  .registerVariable('user', 'map')
  .registerVariable('server', 'string')
  .registerVariable('tool', 'string');

export interface ConditionContext {
  args: Record<string, unknown>;
  user: { sub: string; email: string; groups: string[] };
  server: string;
  tool: string;
}

/** True, false, or undefined when the condition could not be evaluated (missing argument, type error). */
export type CompiledCondition = (context: ConditionContext) => boolean | undefined;

export function compileCondition(expression: string): { ok: true; evaluate: CompiledCondition } | { ok: false; error: string } {
  const checked = environment.check(expression);
  if (!checked.valid) return { ok: false, error: `CEL: ${firstLine(checked.error?.message)}` };
  if (checked.type !== 'bool' && checked.type !== 'dyn')
    return { ok: false, error: `CEL: condition must be boolean, this one is ${checked.type}` };
  const program = environment.parse(expression);
  // The caller decides what "could not evaluate" means for its effect: deny rules apply
  // (fail closed), allow and confirm rules do not.
  return {
    ok: true,
    evaluate: (context) => {
      try {
        const value: unknown = program(context);
        return typeof value === 'boolean' ? value : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

function firstLine(text: string | undefined): string {
  return (text ?? 'invalid expression').split('\n')[0]!.trim();
}
