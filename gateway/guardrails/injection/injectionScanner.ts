/**
 * Flags text that may be aimed at the model rather than the user: invisible and
 * bidirectional control characters (hidden instructions, reordered text), scripts mixed
 * inside one word (confusable look-alikes such as a Cyrillic "а" in "pаypal"), and phrases
 * that instruct the model (ignore previous instructions, hide this from the user, read
 * ~/.ssh). Advisory: it reports flag names; the caller decides to audit, hide or refuse.
 * A heuristic by nature: it catches the common tricks, not a determined author.
 */

export type InjectionFlag = 'invisible-characters' | 'bidi-control' | 'mixed-script' | 'model-instruction';

const INVISIBLE = /[\u200B-\u200D\u2060-\u2064\uFEFF\u{E0000}-\u{E007F}]/u;
const BIDI = /[\u202A-\u202E\u2066-\u2069]/;
/** A word with Latin letters and Cyrillic or Greek ones: a classic look-alike. */
const MIXED_SCRIPT = /(?=[\p{L}\p{M}]*\p{Script=Latin})(?=[\p{L}\p{M}]*[\p{Script=Cyrillic}\p{Script=Greek}])[\p{L}\p{M}]{2,}/u;
const MODEL_INSTRUCTION = new RegExp(
  [
    String.raw`ignore (?:all |any )?(?:previous|prior|above|earlier) (?:instructions|directions|rules)`,
    String.raw`disregard (?:all |any )?(?:previous|prior|your) (?:instructions|rules)`,
    String.raw`(?:do not|don't|never) (?:tell|inform|mention|reveal|show) (?:this )?(?:to )?the user`,
    String.raw`without (?:telling|informing|asking) the user`,
    String.raw`<\s*(?:important|system|instructions?)\s*>`,
    String.raw`\byou are now\b`,
    String.raw`(?:read|cat|open|include|send)\b[^.\n]{0,40}(?:~\/\.ssh|id_rsa|\.aws\/credentials|\.env\b|\/etc\/passwd)`,
    String.raw`system prompt`,
  ].join('|'),
  'i',
);

export function scanText(text: string): InjectionFlag[] {
  if (text.length === 0) return [];
  const flags: InjectionFlag[] = [];
  if (INVISIBLE.test(text)) flags.push('invisible-characters');
  if (BIDI.test(text)) flags.push('bidi-control');
  // Only cheap pre-checks before the Unicode-property regex: pure ASCII cannot mix scripts.
  // eslint-disable-next-line no-control-regex -- "any character outside ASCII" starts at NUL on purpose
  if (/[^\x00-\x7F]/.test(text) && MIXED_SCRIPT.test(text)) flags.push('mixed-script');
  if (MODEL_INSTRUCTION.test(text)) flags.push('model-instruction');
  return flags;
}

/** Flags for every string in a JSON value (a tool definition or a result), de-duplicated. */
export function scanValue(value: unknown, maxStrings = 10_000): InjectionFlag[] {
  const found = new Set<InjectionFlag>();
  let seen = 0;
  const walk = (node: unknown, depth: number): void => {
    if (depth > 64 || seen > maxStrings) return;
    if (typeof node === 'string') {
      seen++;
      for (const flag of scanText(node)) found.add(flag);
    } else if (Array.isArray(node)) {
      for (const item of node) walk(item, depth + 1);
    } else if (node && typeof node === 'object') {
      for (const item of Object.values(node)) walk(item, depth + 1);
    }
  };
  walk(value, 0);
  return [...found];
}
