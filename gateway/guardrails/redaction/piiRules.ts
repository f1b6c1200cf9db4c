/**
 * Personal data the redactor removes when a server's policy asks for it (`pii: true`; off
 * by default): email addresses, phone numbers, payment card numbers that pass the Luhn
 * check, and IBANs whose check digits are valid.
 *
 * No validator library is installed in this project (`validator`, `libphonenumber-js`
 * and `ibantools` are absent), so the two checksums are implemented here: Luhn (ISO/IEC
 * 7812-1 Annex B) and IBAN mod-97 (ISO 13616 / ISO 7064 MOD 97-10) with the SWIFT IBAN
 * registry's length per country. Phone numbers have no checksum; we take only what is
 * unambiguous in running text: `+` and 8-15 digits (E.164), or North American numbers
 * written with separators. Bare digit runs are left alone: they are ids and timestamps far
 * more often than phone numbers. Same rule shape and engine as the secret rules.
 */
import type { RuleMatch, SecretRule } from './secretRule';

/** Luhn check over a string of ASCII digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** IBAN length per country (SWIFT IBAN registry). */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BI: 27,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DJ: 27,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FK: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  LY: 25,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MN: 20,
  MR: 27,
  MT: 31,
  MU: 30,
  NI: 28,
  NL: 18,
  NO: 15,
  OM: 23,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  RU: 33,
  SA: 24,
  SC: 31,
  SD: 18,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  SO: 23,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
  YE: 30,
};

const IBAN_COUNTRIES = Object.keys(IBAN_LENGTHS);

/** ISO 7064 MOD 97-10 over an IBAN without spaces (country code, check digits, BBAN). */
export function ibanValid(iban: string): boolean {
  const expected = IBAN_LENGTHS[iban.slice(0, 2)];
  if (expected === undefined || iban.length !== expected || !/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(iban)) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    // Letters count as two digits (A = 10 ... Z = 35); fold one digit at a time.
    if (c >= 65) {
      const v = c - 55;
      remainder = (remainder * 100 + v) % 97;
    } else {
      remainder = (remainder * 10 + (c - 48)) % 97;
    }
  }
  return remainder === 1;
}

/** Issuer prefixes and lengths of the card networks (ISO/IEC 7812 IINs). */
function plausibleCard(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p4 = Number(d.slice(0, 4));
  const p6 = Number(d.slice(0, 6));
  if (d[0] === '4') return n === 13 || n === 16 || n === 19; // Visa
  if ((p2 >= 51 && p2 <= 55) || (p6 >= 222100 && p6 <= 272099)) return n === 16; // Mastercard
  if (p2 === 34 || p2 === 37) return n === 15; // American Express
  if (p4 === 6011 || p2 === 65 || (p4 >= 6440 && p4 <= 6499) || p2 === 62) return n >= 16 && n <= 19; // Discover, UnionPay
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19; // JCB
  if ((p4 >= 3000 && p4 <= 3059) || p2 === 36 || p2 === 38 || p2 === 39) return n >= 14 && n <= 19; // Diners
  if (p2 === 50 || (p2 >= 56 && p2 <= 69)) return n >= 12 && n <= 19; // Maestro
  return false;
}

const CARD = /(?<![\d.,/-])[2-6](?:\d[ -]?){11,18}\d(?!\d|[.,]\d)/y;
function matchCard(text: string, at: number): RuleMatch | null {
  CARD.lastIndex = at;
  const m = CARD.exec(text);
  if (m === null) return null;
  let raw = m[0];
  // A separator must be used consistently (all spaces or all dashes).
  if (raw.includes(' ') && raw.includes('-')) return null;
  raw = raw.trimEnd();
  const digits = raw.replace(/[ -]/g, '');
  if (!plausibleCard(digits) || !luhnValid(digits)) return null;
  return { end: at + raw.length, spans: [at, at + raw.length] };
}

const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])/y;
function matchIban(text: string, at: number): RuleMatch | null {
  IBAN.lastIndex = at;
  const m = IBAN.exec(text);
  if (m === null) return null;
  const expected = IBAN_LENGTHS[m[0].slice(0, 2)];
  if (expected === undefined) return null;
  // Walk the printed form until the country's length is reached (it may be followed by
  // a separate word that the pattern swallowed).
  let compact = '';
  let end = at;
  for (; end < at + m[0].length && compact.length < expected; end++) {
    const c = text[end] ?? '';
    if (c !== ' ') compact += c;
  }
  if (!ibanValid(compact)) return null;
  return { end, spans: [at, end] };
}

const EMAIL_DOMAIN = /@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])/y;
function isEmailLocalChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
}
/** Tried at `@`: reads the local part backwards (RFC 5321's common subset), the domain forwards. */
function matchEmail(text: string, at: number): RuleMatch | null {
  let start = at;
  while (start > 0 && at - start < 64 && isEmailLocalChar(text.charCodeAt(start - 1))) start--;
  while (start < at && text.charCodeAt(start) === 46) start++; // no leading dot
  if (start === at) return null;
  EMAIL_DOMAIN.lastIndex = at;
  if (!EMAIL_DOMAIN.test(text)) return null;
  // `git@github.com:org/repo.git` is an scp-style remote, not an address.
  if (text.charCodeAt(EMAIL_DOMAIN.lastIndex) === 58 && /\S/.test(text[EMAIL_DOMAIN.lastIndex + 1] ?? ' ')) return null;
  return { end: EMAIL_DOMAIN.lastIndex, spans: [start, EMAIL_DOMAIN.lastIndex] };
}

/**
 * Tried at `+`: digits with single separators (space, dot, dash, parentheses around an
 * area code), 8-15 digits in all. A hand-written scan: a regex with optional separators
 * between digit groups backtracks badly on long digit runs.
 */
function matchInternationalPhone(text: string, at: number): RuleMatch | null {
  const before = at > 0 ? text.charCodeAt(at - 1) : 32;
  if (isWordChar(before) || before === 43) return null;
  let digits = 0;
  let lastDigitEnd = at;
  let separatorRun = 0;
  let i = at + 1;
  for (; i < text.length && i - at <= 24; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      digits++;
      lastDigitEnd = i + 1;
      separatorRun = 0;
    } else if (c === 32 || c === 45 || c === 46 || c === 40 || c === 41) {
      if (++separatorRun > 2) break;
    } else break;
  }
  if (lastDigitEnd < text.length && isWordChar(text.charCodeAt(lastDigitEnd))) return null;
  if (digits < 8 || digits > 15 || text.charCodeAt(at + 1) < 49 || text.charCodeAt(at + 1) > 57) return null;
  return { end: lastDigitEnd, spans: [at, lastDigitEnd] };
}

function isWordChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95;
}

export const PII_RULES: readonly SecretRule[] = [
  { kind: 'email', basis: 'RFC 5321 address (common subset)', triggers: ['@'], match: matchEmail },
  { kind: 'phone', basis: 'E.164 with +', triggers: ['\\+[1-9]'], match: matchInternationalPhone },
  {
    kind: 'phone',
    basis: 'NANP with separators',
    triggers: ['\\([2-9]\\d\\d\\) ?\\d', ...'23456789'.split('').map((d) => `${d}\\d\\d[-. ][2-9]\\d\\d[-. ]\\d`)],
    match: (() => {
      const nanp = /(?<![\w+-])(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[-. ])[2-9]\d{2}[-. ]\d{4}(?![\w-])/y;
      return (text: string, at: number): RuleMatch | null => {
        nanp.lastIndex = at;
        return nanp.test(text) ? { end: nanp.lastIndex, spans: [at, nanp.lastIndex] } : null;
      };
    })(),
  },
  {
    kind: 'card-number',
    basis: 'ISO/IEC 7812 IIN + Luhn',
    triggers: '23456'.split('').map((d) => `${d}\\d{3}[ -]?\\d{4}[ -]?\\d{4}`),
    match: matchCard,
  },
  { kind: 'iban', basis: 'ISO 13616 + MOD 97-10', triggers: IBAN_COUNTRIES.map((cc) => `${cc}\\d\\d ?[A-Z0-9]{4}`), match: matchIban },
];

export const PII_KINDS: readonly string[] = [...new Set(PII_RULES.map((r) => r.kind))].sort();
