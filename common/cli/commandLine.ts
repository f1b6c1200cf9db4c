/**
 * The command line as every `gatehouse` subcommand reads it: node's own `util.parseArgs`,
 * strict (an unknown option, a missing value or, unless asked for, a bare argument is a
 * usage error), and one way to answer a usage error: what was wrong, the usage text, exit
 * code 2. Options are named, never given secrets: argv is visible to every local user.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { describeError } from '../log/logger';

/** A command line that cannot be run; its message says what to change. */
export class UsageError extends Error {}

export const USAGE_EXIT_CODE = 2;

export interface CommandLineSpec<S extends string, F extends string> {
  /** Options that take a value: `--name value` or `--name=value`. */
  strings?: readonly S[];
  /** Options that take none. */
  flags?: readonly F[];
  /** Whether bare arguments are allowed. */
  positionals?: boolean;
}

export interface CommandLine<S extends string, F extends string> {
  values: { [K in S]?: string } & { [K in F]?: boolean };
  positionals: string[];
}

/** Parses `argv` against `spec`; throws UsageError with node's own words for what it refuses. */
export function parseCommandLine<S extends string = never, F extends string = never>(
  argv: readonly string[],
  spec: CommandLineSpec<S, F>,
): CommandLine<S, F> {
  const options: ParseArgsOptionsConfig = {};
  for (const name of spec.strings ?? []) options[name] = { type: 'string' };
  for (const name of spec.flags ?? []) options[name] = { type: 'boolean' };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], strict: true, allowPositionals: spec.positionals ?? false, options });
  } catch (error) {
    throw new UsageError(describeError(error), { cause: error });
  }
  // `--key=` or `--key "$UNSET"` is a mistake, not a choice: an empty value must not read as "not given".
  for (const name of spec.strings ?? []) {
    if (parsed.values[name] === '') throw new UsageError(`--${name} needs a value`);
  }
  return { values: parsed.values as CommandLine<S, F>['values'], positionals: parsed.positionals };
}

export interface CommandOutput {
  out(text: string): void;
  err(text: string): void;
}

export const processOutput: CommandOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** `gatehouse <command>: <problem>`, then the usage, on stderr; returns the exit code for it. */
export function explainUsage(command: string, problem: string, usage: string, io: CommandOutput = processOutput): number {
  io.err(`gatehouse ${command}: ${problem}\n\n${usage}`);
  return USAGE_EXIT_CODE;
}

/**
 * `parse()`'s result; or, when it throws a UsageError, that explained (`explainUsage`) and
 * undefined, for the caller to exit with USAGE_EXIT_CODE. Any other error is thrown on.
 */
export function parseOrExplain<T>(command: string, usage: string, parse: () => T, io: CommandOutput = processOutput): T | undefined {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    explainUsage(command, error.message, usage, io);
    return undefined;
  }
}
