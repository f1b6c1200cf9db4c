/**
 * What a redaction rule is (secret and PII rules alike; see secretRules.ts for how the
 * redactor drives them), and `patternRule`, the builder for the common case: one sticky
 * regex tried at the trigger's index.
 */

/** Where to redact: flat [start, end, start, end, ...], and where scanning may resume. */
export interface RuleMatch {
  readonly end: number;
  readonly spans: readonly number[];
}

export interface SecretRule {
  /** Reported in findings and in the `[REDACTED:<kind>]` marker. */
  readonly kind: string;
  /** The secretlint rule (or other published format) this shape is derived from. */
  readonly basis: string;
  /**
   * Regex sources the prefilter searches for: no capture groups, no `u`-only syntax, and a
   * literal first character (or an escaped one, `\\+`), which is where `match` is tried.
   * Spell out each case (`secret`, `Secret`, `SECRET`): the prefilter is case-sensitive.
   */
  readonly triggers: readonly string[];
  /**
   * A keyword-based shape (`Authorization: Bearer ...`, `"password": "..."`). Its value may
   * hold a specific secret, which then wins and names the kind; scanning resumes inside it.
   */
  readonly generic?: boolean;
  readonly match: (text: string, at: number) => RuleMatch | null;
}

interface PatternOptions {
  /** Capture groups to redact (the pattern needs the `d` flag); default: the whole match. */
  readonly groups?: readonly number[];
  readonly accept?: (m: RegExpExecArray) => boolean;
  readonly generic?: boolean;
}

/** A rule whose whole shape is one sticky regex tried at the trigger's index. */
export function patternRule(
  kind: string,
  basis: string,
  triggers: readonly string[],
  pattern: RegExp,
  options: PatternOptions = {},
): SecretRule {
  if (!pattern.sticky) throw new Error(`secret rule ${kind}: pattern must be sticky`);
  const { groups, accept } = options;
  if (groups && !pattern.hasIndices) throw new Error(`secret rule ${kind}: groups need the d flag`);
  return {
    kind,
    basis,
    triggers,
    generic: options.generic ?? false,
    match(text, at) {
      pattern.lastIndex = at;
      const m = pattern.exec(text);
      if (m === null || (accept !== undefined && !accept(m))) return null;
      const end = m.index + m[0].length;
      if (groups === undefined) return { end, spans: [m.index, end] };
      const spans: number[] = [];
      for (const g of groups) {
        const range = m.indices?.[g];
        if (range !== undefined) spans.push(range[0], range[1]);
      }
      return spans.length > 0 ? { end, spans } : null;
    },
  };
}
