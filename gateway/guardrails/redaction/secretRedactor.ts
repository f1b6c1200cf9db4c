/**
 * `gateway/guardrails/redaction/` owns secret redaction for every result the gateway
 * relays: the rule tables (`secretRules.ts`: what counts as a secret, derived from
 * secretlint's recommended preset; `piiRules.ts`: personal data, off by default), the
 * scanning engine with its prefilter, and `SecretRedactor`, which walks an MCP result and
 * replaces each secret with `[REDACTED:<kind>]`. It reports how many of each kind it
 * removed, never a value.
 *
 * Speed. Almost every result is clean, so the cost that matters is proving a string clean.
 * All rule triggers (distinctive prefixes such as `AKIA`, `ghp_`, `xoxb-`, `-----BEGIN`,
 * `eyJ`, `://user:pass@`, keywords followed by `=` or `:`) are joined into one global regex,
 * factored by first character; V8 runs it as a single pass at ~230 MB/s, and a string with
 * no trigger costs that pass and nothing else (no allocation). Only where a trigger occurs
 * are the exact rules for that first character tried, anchored there.
 *
 * Results. `redactResult` (and `redactValue`, for any other JSON value) copies on write: a clean result comes back as the same object;
 * a dirty one as a new object that shares every clean branch with the original.
 */
import { PII_KINDS, PII_RULES } from './piiRules';
import { CREDENTIAL_KEY, isPlausibleCredentialValue } from './credentialValues';
import type { RuleMatch, SecretRule } from './secretRule';
import { SECRET_KINDS, SECRET_RULES } from './secretRules';

export interface SecretRedactorOptions {
  /** Also redact emails, phone numbers, card numbers and IBANs. Default false. */
  readonly pii?: boolean;
  /**
   * `blob` contents (base64) up to this many decoded bytes are decoded and scanned when they
   * are text (a text MIME type, or no/unknown type and valid UTF-8 without NUL); larger or
   * binary blobs are relayed as they are. Default 1 MiB; 0 turns blob scanning off.
   */
  readonly maxBlobBytes?: number;
}

/** Kind -> how many were redacted. */
export type RedactionFindings = Record<string, number>;

export interface TextRedaction {
  text: string;
  findings: RedactionFindings;
}

export interface ResultRedaction {
  result: unknown;
  findings: RedactionFindings;
}

export interface ValueRedaction {
  value: unknown;
  findings: RedactionFindings;
}

/** Returned for every clean input; frozen so no caller can turn it into a shared tally. */
const NO_FINDINGS: RedactionFindings = Object.freeze({}) as RedactionFindings;

/** The shortest string any rule can match (`a@b.co`); shorter strings are not scanned. */
const MIN_SCAN_LENGTH = 6;
/** Results nested deeper than this are refused rather than relayed unscanned. */
const MAX_DEPTH = 256;
/** Methods whose results carry nothing from the upstream worth scanning. */
const NO_CONTENT_METHODS = new Set(['ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe']);
const DEFAULT_MAX_BLOB_BYTES = 1024 * 1024;

export function redactionMarker(kind: string): string {
  return `[REDACTED:${kind}]`;
}

interface Hit {
  readonly kind: string;
  readonly generic: boolean;
  readonly spans: readonly number[];
  readonly start: number;
  readonly end: number;
}

function hitOf(rule: SecretRule, match: RuleMatch): Hit {
  let start = Infinity;
  let end = -Infinity;
  for (let i = 0; i < match.spans.length; i += 2) {
    start = Math.min(start, match.spans[i] ?? Infinity);
    end = Math.max(end, match.spans[i + 1] ?? -Infinity);
  }
  return { kind: rule.kind, generic: rule.generic === true, spans: match.spans, start, end };
}

/**
 * One compiled rule set: the prefilter over every trigger, and the rules bucketed by the
 * first character of their triggers.
 */
export class RuleEngine {
  private readonly prefilter: RegExp;
  private readonly buckets: Array<SecretRule[] | undefined> = new Array<SecretRule[] | undefined>(128);

  constructor(readonly rules: readonly SecretRule[]) {
    const tails = new Map<string, string[]>();
    for (const rule of rules) {
      for (const trigger of rule.triggers) {
        const escaped = trigger.startsWith('\\');
        const first = escaped ? trigger.charAt(1) : trigger.charAt(0);
        const code = first.charCodeAt(0);
        if (trigger.length < (escaped ? 2 : 1) || code >= 128 || (!escaped && '\\^$.|?*+()[]{}'.includes(first))) {
          throw new Error(`rule ${rule.kind}: trigger ${JSON.stringify(trigger)} must start with a literal ASCII character`);
        }
        const bucket = (this.buckets[code] ??= []);
        if (!bucket.includes(rule)) bucket.push(rule);
        let list = tails.get(first);
        if (list === undefined) tails.set(first, (list = []));
        list.push(`(?:${trigger.slice(escaped ? 2 : 1)})`);
      }
    }
    // Factored by first character (`g(?:h[pousr]_|lpat-|...)|x(?:...)`): irregexp then
    // rejects most positions on one character test; a flat alternation of the same triggers
    // runs at about half the speed. No `u` flag, which is slower still.
    const groups = [...tails].map(([first, list]) => `${/[\w\s]/.test(first) ? first : `\\${first}`}(?:${list.join('|')})`);
    this.prefilter = new RegExp(groups.join('|'), 'g');
  }

  /** Every secret in `text`, non-overlapping and in order; null (no allocation) when clean. */
  scan(text: string): Hit[] | null {
    if (text.length < MIN_SCAN_LENGTH) return null;
    const prefilter = this.prefilter;
    prefilter.lastIndex = 0;
    let hits: Hit[] | null = null;
    let generic: Hit[] | null = null;
    for (let m = prefilter.exec(text); m !== null; m = prefilter.exec(text)) {
      const at = m.index;
      let best: Hit | null = null;
      let resume = at + 1;
      const bucket = this.buckets[text.charCodeAt(at)];
      if (bucket !== undefined) {
        for (const rule of bucket) {
          const match = rule.match(text, at);
          if (match === null) continue;
          const hit = hitOf(rule, match);
          if (hit.generic) {
            (generic ??= []).push(hit);
            // A generic value may hold a specific secret, which should then name the kind:
            // go on from where the value starts, not past it.
            resume = Math.max(resume, hit.start);
          } else if (best === null || hit.end > best.end) {
            best = hit;
          }
        }
      }
      if (best !== null) {
        (hits ??= []).push(best);
        // Nothing inside a specific secret needs reporting again.
        resume = Math.max(best.end, at + 1);
      }
      prefilter.lastIndex = resume;
    }
    if (generic === null) return hits === null ? null : hits.length === 1 ? hits : dropOverlaps(hits);
    return resolveGeneric(hits === null ? [] : dropOverlaps(hits), generic);
  }
}

const byStart = (a: Hit, b: Hit) => a.start - b.start || b.end - a.end;

/** Earliest first (longest on a tie); a hit overlapping the one kept before it is dropped. */
function dropOverlaps(hits: Hit[]): Hit[] {
  hits.sort(byStart);
  const kept: Hit[] = [];
  let end = -1;
  for (const hit of hits) {
    if (hit.start < end) continue;
    kept.push(hit);
    end = hit.end;
  }
  return kept;
}

/** Generic hits that overlap a specific one give way to it; the rest fill in, in order. */
function resolveGeneric(specific: Hit[], generic: Hit[]): Hit[] {
  const extra = dropOverlaps(generic);
  const kept: Hit[] = [];
  let s = 0;
  for (const g of extra) {
    while (s < specific.length && specific[s]!.end <= g.start) s++;
    const next = specific[s];
    if (next === undefined || next.start >= g.end) kept.push(g);
  }
  return kept.length === 0 ? specific : specific.concat(kept).sort(byStart);
}

function applyHits(text: string, hits: readonly Hit[], findings: RedactionFindings): string {
  const spans: Array<{ start: number; end: number; kind: string }> = [];
  for (const hit of hits) {
    findings[hit.kind] = (findings[hit.kind] ?? 0) + 1;
    for (let i = 0; i + 1 < hit.spans.length; i += 2) spans.push({ start: hit.spans[i] ?? 0, end: hit.spans[i + 1] ?? 0, kind: hit.kind });
  }
  spans.sort((a, b) => a.start - b.start);
  let out = '';
  let pos = 0;
  for (const span of spans) {
    if (span.start < pos) continue;
    out += text.slice(pos, span.start) + redactionMarker(span.kind);
    pos = span.end;
  }
  return out + text.slice(pos);
}

let secretEngine: RuleEngine | undefined;
let secretAndPiiEngine: RuleEngine | undefined;

/** The compiled engines are shared: compiling the prefilter costs more than a scan. */
function engineFor(pii: boolean): RuleEngine {
  if (pii) return (secretAndPiiEngine ??= new RuleEngine([...SECRET_RULES, ...PII_RULES]));
  return (secretEngine ??= new RuleEngine(SECRET_RULES));
}

const TEXT_MIME =
  /^(?:text\/|application\/(?:[\w.+-]+\+)?(?:json|xml|yaml|x-yaml|toml|javascript|ecmascript|x-sh|x-shellscript|sql|graphql|x-www-form-urlencoded|x-ndjson|jsonl|x-httpd-php|x-python|x-ruby|typescript|x-typescript)(?:;|$)|[\w.+-]+\/[\w.+-]+\+(?:json|xml|yaml)(?:;|$))/i;
const SNIFF_MIME = /^(?:application\/octet-stream|application\/unknown)?(?:;|$)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/**
 * The standard base64 alphabet, as MCP's `blob` and `data` use, optionally wrapped in lines
 * (a shape check at ~1 GB/s). Anything else in a `blob` or media `data` is scanned as text.
 */
const BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/;

export class SecretRedactor {
  private readonly engine: RuleEngine;
  private readonly maxBlobBytes: number;
  /** Findings of the `redactValue` call in progress (calls are synchronous). */
  private tally: RedactionFindings | null = null;

  constructor(options: SecretRedactorOptions = {}) {
    this.engine = engineFor(options.pii === true);
    this.maxBlobBytes = options.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES;
  }

  /** Every kind this redactor can report. */
  get kinds(): readonly string[] {
    return this.engine.rules === SECRET_RULES ? SECRET_KINDS : [...SECRET_KINDS, ...PII_KINDS];
  }

  /** Redacts one string. Clean text comes back as the same string with empty findings. */
  redactText(text: string): TextRedaction {
    const hits = this.engine.scan(text);
    if (hits === null) return { text, findings: NO_FINDINGS };
    const findings: RedactionFindings = {};
    return { text: applyHits(text, hits, findings), findings };
  }

  /**
   * Redacts every string in the result of `method` that can carry content: tool results
   * (`content[]` text, `structuredContent` at any depth, keys included, and the whole value
   * of a credential-named key such as `password` or `apiKey`; embedded resources),
   * `resources/read` contents, `prompts/get` messages, completion values, and whatever else
   * a list or `initialize` result holds (descriptions, instructions). Text `blob`s are
   * decoded, redacted and re-encoded (see `maxBlobBytes`); image and audio `data` is
   * binary and passes through; either is scanned as plain text when it is not base64 at
   * all. A clean result is returned as the same object.
   */
  redactResult(method: string, result: unknown): ResultRedaction {
    if (NO_CONTENT_METHODS.has(method)) return { result, findings: NO_FINDINGS };
    const redacted = this.redactValue(result);
    return { result: redacted.value, findings: redacted.findings };
  }

  /**
   * Redacts every string in any JSON value, keys and credential-named values included, with
   * the same rules as results: for what is not a result, such as a call's arguments shown to
   * a reviewer. A clean value is returned as the same object.
   */
  redactValue(value: unknown): ValueRedaction {
    if (value === null || typeof value !== 'object') return { value, findings: NO_FINDINGS };
    this.tally = null;
    try {
      const redacted = this.walk(value, 0);
      return { value: redacted, findings: this.tally ?? NO_FINDINGS };
    } finally {
      this.tally = null;
    }
  }

  private redactString(text: string): string {
    const hits = this.engine.scan(text);
    if (hits === null) return text;
    return applyHits(text, hits, (this.tally ??= {}));
  }

  private walk(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return this.redactString(value);
    if (typeof value !== 'object' || value === null) return value;
    if (depth > MAX_DEPTH) throw new Error(`result nested deeper than ${MAX_DEPTH} levels; refusing to relay it unscanned`);
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        const next = this.walk(item, depth + 1);
        if (next !== item) (copy ??= value.slice())[i] = next;
      }
      return copy ?? value;
    }
    const obj = value as Record<string, unknown>;
    // Image and audio blocks carry binary media as base64 `data`.
    const binaryData = obj['type'] === 'image' || obj['type'] === 'audio';
    let copy: Record<string, unknown> | undefined;
    for (const key in obj) {
      if (!Object.hasOwn(obj, key)) continue;
      const item = obj[key];
      let next: unknown;
      if (typeof item === 'string' && key === 'blob') next = this.redactBlob(item, obj['mimeType']);
      else if (binaryData && key === 'data' && typeof item === 'string' && BASE64.test(item)) next = item;
      else if (typeof item === 'string' && item.length >= 8 && CREDENTIAL_KEY.test(key)) next = this.redactCredentialValue(item);
      else next = this.walk(item, depth + 1);
      const nextKey = this.redactString(key);
      if (copy === undefined) {
        if (next === item && nextKey === key) continue;
        copy = {};
        for (const earlier in obj) {
          if (earlier === key) break;
          if (Object.hasOwn(obj, earlier)) defineOwn(copy, earlier, obj[earlier]);
        }
      }
      defineOwn(copy, nextKey, next);
    }
    return copy ?? obj;
  }

  /**
   * The string under a credential-named key (`{"password": "..."}` in structured content,
   * where the text rule for the same shape cannot see key and value together). A specific
   * secret in it names the kind; otherwise a plausible value is redacted whole.
   */
  private redactCredentialValue(value: string): string {
    const redacted = this.redactString(value);
    if (redacted !== value || !isPlausibleCredentialValue(value)) return redacted;
    const tally = (this.tally ??= {});
    tally['credential-assignment'] = (tally['credential-assignment'] ?? 0) + 1;
    return redactionMarker('credential-assignment');
  }

  private redactBlob(blob: string, mimeType: unknown): string {
    // Not base64 at all (a malformed result, or a field that merely is called `blob`): text.
    if (!BASE64.test(blob)) return this.redactString(blob);
    if (this.maxBlobBytes <= 0 || blob.length < MIN_SCAN_LENGTH || blob.length > Math.ceil(this.maxBlobBytes / 3) * 4) return blob;
    const mime = typeof mimeType === 'string' ? mimeType.trim() : '';
    const declaredText = TEXT_MIME.test(mime);
    if (!declaredText && !SNIFF_MIME.test(mime)) return blob;
    let text: string;
    try {
      text = utf8.decode(Buffer.from(blob, 'base64'));
    } catch {
      return blob; // not UTF-8: binary, whatever the MIME type says
    }
    if (!declaredText && text.includes('\u0000')) return blob;
    const redacted = this.redactString(text);
    return redacted === text ? blob : Buffer.from(redacted, 'utf8').toString('base64');
  }
}

/** Plain assignment would treat a `__proto__` key as the prototype; JSON keeps it as data. */
function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
