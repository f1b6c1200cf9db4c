/**
 * Secret shapes one regex cannot decide alone: PEM / OpenSSH / PGP private keys (a body to
 * walk, maybe cut off), GCP service-account JSON (two fields), credentials in URLs (the
 * scheme decides the kind), and the payload checks of JWTs and 1Password tokens.
 */
import { TEMPLATE_VARIABLE, isPlaceholderValue } from './credentialValues';
import type { RuleMatch, SecretRule } from './secretRule';

// Private keys (PEM / OpenSSH / PGP armour).

const PEM_HEADER = /-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----/y;
const PEM_FOOTER = /-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----/y;
/** An armour header line inside the body (`Proc-Type: 4,ENCRYPTED`, `Version: GnuPG v2`). */
const ARMOUR_HEADER = /[A-Za-z][A-Za-z-]{0,30}: [^\n\\]{0,200}(?:\r?\n|(?:\\+r)?\\+n)/y;
const MAX_PEM_BODY = 64 * 1024;

function isBase64Char(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 61;
}

/**
 * secretlint-rule-privatekey: BEGIN ... PRIVATE KEY, a base64 body (raw newlines or JSON
 * `\n` escapes), END. Deviations, each toward redacting more: any algorithm word (also
 * `ENCRYPTED`), armour header lines, bodies of 40+ base64 characters (its floor of 100 and
 * its `MI`/`b3Bl` magic check miss Ed25519 PKCS#8 keys, 64 characters starting `MC4C`, and
 * PGP blocks), and a key cut off before its END line (a truncated tool output) is redacted
 * up to where its body stops, if that body has 64+ base64 characters.
 */
export function matchPrivateKey(text: string, at: number): RuleMatch | null {
  PEM_HEADER.lastIndex = at;
  const header = PEM_HEADER.exec(text);
  if (header === null) return null;
  const bodyStart = at + header[0].length;
  const limit = Math.min(text.length, bodyStart + MAX_PEM_BODY);
  let i = bodyStart;
  let base64 = 0;
  let lineStart = true;
  while (i < limit) {
    const c = text.charCodeAt(i);
    if (isBase64Char(c)) {
      if (lineStart && c !== 61) {
        ARMOUR_HEADER.lastIndex = i;
        if (ARMOUR_HEADER.test(text)) {
          i = ARMOUR_HEADER.lastIndex;
          continue;
        }
      }
      base64++;
      i++;
      lineStart = false;
    } else if (c === 10 || c === 13) {
      i++;
      lineStart = true;
    } else if (c === 32 || c === 9) {
      i++;
    } else if (c === 92) {
      // `\n` / `\r` escapes, once or more (JSON inside JSON)
      let j = i + 1;
      while (j < limit && text.charCodeAt(j) === 92) j++;
      const e = text.charCodeAt(j);
      if (e !== 110 && e !== 114) break;
      i = j + 1;
      lineStart = true;
    } else break;
  }
  if (text.charCodeAt(i) === 45) {
    // '-': the END line?
    PEM_FOOTER.lastIndex = i;
    if (PEM_FOOTER.test(text) && base64 >= 40) return { end: PEM_FOOTER.lastIndex, spans: [at, PEM_FOOTER.lastIndex] };
  }
  if (base64 < 64) return null;
  // Cut off: redact through the last base64 character, leave trailing whitespace alone.
  let end = i;
  while (end > bodyStart && !isBase64Char(text.charCodeAt(end - 1))) end--;
  return { end, spans: [at, end] };
}

/**
 * secretlint-rule-gcp (PrivateKeyJSON): a service-account key file has `private_key_id`
 * and a PEM `private_key`. The preset only checks whole `.json` files; a tool result holds
 * the JSON inside text, maybe escaped once more (`\"private_key\"`), so we match the two
 * fields where Google writes them (adjacent, id first) and redact both values.
 */
const GCP_KEY_FIELDS = /private_key_id\\?"\s*:\s*\\?"([0-9a-f]{40})\\?"\s*,\s*\\?"private_key\\?"\s*:\s*\\?"(?=-----BEGIN)/dy;
export function matchGcpServiceAccount(text: string, at: number): RuleMatch | null {
  GCP_KEY_FIELDS.lastIndex = at;
  const m = GCP_KEY_FIELDS.exec(text);
  const id = m?.indices?.[1];
  if (m === null || id === undefined) return null;
  const keyStart = m.index + m[0].length;
  const key = matchPrivateKey(text, keyStart);
  if (key === null) return null;
  return { end: key.end, spans: [id[0], id[1], keyStart, key.end] };
}

// ---------------------------------------------------------------------------------------
// Credentials in URLs.

const DB_SCHEMES = new Set([
  'mongodb',
  'mongodb+srv',
  'postgres',
  'postgresql',
  'mysql',
  'mysqlx',
  'mariadb',
  'redis',
  'rediss',
  'amqp',
  'amqps',
  'mssql',
  'sqlserver',
  'oracle',
  'clickhouse',
  'cockroachdb',
]);
/**
 * secretlint-rule-basicauth and secretlint-rule-database-connection-string:
 * `scheme://user:password@host`. Tried at `://`; the scheme is read by lookbehind. We allow
 * every character RFC 3986 allows in userinfo (the preset allows only `[-A-Za-z0-9_]`,
 * which misses most real passwords) and an empty user (`redis://:pw@host`), and redact the
 * userinfo only, so the host stays readable. Placeholder values are skipped as the preset
 * does.
 */
const URL_USERINFO =
  /(?<=(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,30})):\/\/([^\s:/?#@"'<>\\[\]{}|^`]{0,2048}):([^\s/?#@"'<>\\[\]{}|^`]{1,2048})@(?=[A-Za-z0-9[])/dy;
export function urlCredentialRule(kind: 'basic-auth-url' | 'db-connection-string', basis: string): SecretRule {
  const wantDb = kind === 'db-connection-string';
  return {
    kind,
    basis,
    triggers: [':\\/\\/[^\\s/?#@:]{0,2048}:[^\\s/?#@]{1,2048}@'],
    match(text, at) {
      URL_USERINFO.lastIndex = at;
      const m = URL_USERINFO.exec(text);
      if (m === null) return null;
      const scheme = (m[1] ?? '').toLowerCase();
      if (DB_SCHEMES.has(scheme) !== wantDb) return null;
      const user = m[2] ?? '';
      const password = m[3] ?? '';
      if (password.length < 4 || user === password || isPlaceholderValue(password)) return null;
      if (user !== '' && (user.length < 2 || TEMPLATE_VARIABLE.test(user))) return null;
      const userRange = m.indices?.[2];
      const passwordRange = m.indices?.[3];
      if (userRange === undefined || passwordRange === undefined) return null;
      return { end: passwordRange[1] + 1, spans: [userRange[0], passwordRange[1]] };
    },
  };
}

// ---------------------------------------------------------------------------------------
// JWT.

function base64UrlJson(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * JWT (RFC 7519; not in the preset; shape as gitleaks' `jwt`): base64url JSON header and
 * payload (both start `eyJ`, which is `{"`), optional signature. Accepted when the header
 * decodes to an object with `alg`, which rules out base64 that merely contains `eyJ`.
 */
export const JWT = /(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{8,4096})\.eyJ[A-Za-z0-9_-]{8,65536}\.[A-Za-z0-9_-]{0,4096}(?![A-Za-z0-9_-])/y;
export function acceptJwt(m: RegExpExecArray): boolean {
  const header = base64UrlJson(m[1] ?? '');
  return typeof header === 'object' && header !== null && typeof (header as Record<string, unknown>)['alg'] === 'string';
}

/** secretlint-rule-1password: `ops_` + base64 JSON. */
export function accept1Password(m: RegExpExecArray): boolean {
  try {
    const json: unknown = JSON.parse(atob((m[1] ?? '').replace(/-/g, '+').replace(/_/g, '/')));
    return typeof json === 'object' && json !== null;
  } catch {
    return false;
  }
}
