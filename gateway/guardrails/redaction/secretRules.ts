/**
 * What counts as a secret (and, when asked for, as personal data), one rule per shape.
 *
 * The shapes come from secretlint's recommended preset (`@secretlint/secretlint-rule-preset-
 * recommend` 13): each rule names the secretlint rule it is derived from in `basis`. We run
 * our own copies of those patterns instead of secretlint's engine because the relay path is
 * synchronous and per call (secretlint's `lintSource` is async, ESM-only, and measured here
 * at ~90 µs per clean KB against ~4 µs for this design; see test/bench/redactionBench.ts),
 * and because several kinds the gateway must catch are absent or switched off
 * there: AWS access key ids (`enableIDScanRule` is off by default), JWTs, Google API keys,
 * GCP service-account keys outside a `.json` file, `xoxs`/`xoxe` Slack tokens, Ed25519 PEM
 * keys (shorter than its 100-character floor), `Authorization` headers. Where we deviate
 * from the preset the rule says so. `test/unit/guardrails/secretRedactor.unit.test.ts` runs
 * secretlint itself over the same corpus to keep the two in step.
 *
 * Each rule has `triggers`: short regex fragments for the distinctive start of the secret
 * (a prefix such as `ghp_`, or a keyword such as `private_key_id`), each beginning with a
 * literal character. The redactor joins every trigger into one prefilter regex, factored by
 * that first character, and calls `match` only where a trigger occurs, with `at` = the
 * trigger's index, and only for the rules with a trigger starting with that character.
 * Patterns are sticky (`y`), bounded, and never nest unbounded quantifiers, so a
 * multi-megabyte line costs linear time.
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
function patternRule(kind: string, basis: string, triggers: readonly string[], pattern: RegExp, options: PatternOptions = {}): SecretRule {
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

// ---------------------------------------------------------------------------------------
// Placeholders: documentation and templates show credential-shaped strings that are not
// credentials. Redacting them is harmless but counts as a false positive in findings.

/**
 * Template variables (`${X}`, `{{x}}`, `%X%`, `$(x)`, `<your-token>`, and `$X` at the
 * start), as secretlint's basicauth rule; it takes `$X` anywhere, which would skip real
 * passwords such as `o1Xu$NjQ`.
 */
const TEMPLATE_VARIABLE = /\$\{[^}]{1,50}\}|\{\{[^}]{1,50}\}\}|\{[^}]{1,50}\}|%[A-Z_]{1,30}%|^\$[A-Z_]{1,30}|\$\([^)]{1,50}\)|<[^>]{1,50}>/;
/** Whole-value placeholders (secretlint's BUILTIN_IGNORED_PATTERNS plus common doc values). */
const PLACEHOLDER_VALUES = new Set([
  'password',
  'passwd',
  'mypassword',
  'yourpassword',
  'your_password',
  'your-password',
  'secret',
  'mysecret',
  'changeme',
  'changeit',
  'example',
  'placeholder',
  'redacted',
  'username',
  'myusername',
  'user',
  'pass',
  'root',
  'admin',
  'replace_with_password',
  'replace_me',
  'localhost',
  '127.0.0.1',
  'null',
  'undefined',
  'none',
  'token',
  'your_token',
  'your-token',
  'your_api_key',
  'your-api-key',
  'api_key',
  'apikey',
  'secret_key',
  'access_token',
]);

/** True when a credential value is obviously not a real one. */
const PLACEHOLDER_WORDS = new Set([
  'your',
  'my',
  'some',
  'example',
  'sample',
  'dummy',
  'fake',
  'redacted',
  'placeholder',
  'changeme',
  'xxxx',
]);

export function isPlaceholderValue(value: string): boolean {
  const lower = value.toLowerCase();
  if (PLACEHOLDER_VALUES.has(lower)) return true;
  if (TEMPLATE_VARIABLE.test(value)) return true;
  // One character repeated (xxxx, ****, 0000), masks and ellipses.
  if (/^(.)\1{3,}$/.test(value) || value.includes('***') || value.includes('...') || value.includes('…')) return true;
  // Placeholder words count only in values made of words ("your-api-key", "my_password"),
  // not inside random strings: "…5My9…" in a real password or token signature is chance.
  const randomLooking = value.split(/[^A-Za-z0-9]+/).some((part) => part.length >= 16 && /[0-9]/.test(part) && /[A-Za-z]/.test(part));
  if (!randomLooking && lower.split(/[^a-z0-9]+/).some((word) => PLACEHOLDER_WORDS.has(word))) return true;
  if (!randomLooking && /(?:^|[^a-z])(?:your|example|sample|dummy|fake|redacted|placeholder|changeme|xxxx)(?:[^a-z]|$)/.test(lower))
    return true;
  if (lower.startsWith('process.env') || lower.startsWith('os.environ') || lower.startsWith('env.')) return true;
  return false;
}

/**
 * Keys whose string value is a credential (`password`, `dbPassword`, `client_secret`,
 * `apiKey`, `x-api-key`, `accessToken`, `id_token`, `privateKey`), for structured results,
 * where the key and the value are separate strings. Not `token` alone (LLM tokens,
 * pagination), not `passwordHash` or `secretName`.
 */
export const CREDENTIAL_KEY =
  /(?:pass(?:wo?r)?d|secret(?:[_-]?key)?|(?:access|refresh|auth|id|bearer|private|api|session|client)[_-]?token|api[_-]?key|private[_-]?key)$/i;

/** A value under a credential-named key that looks like a real credential. */
export function isPlausibleCredentialValue(value: string): boolean {
  return value.length >= 8 && value.length <= 4096 && !/\s/.test(value) && !isPlaceholderValue(value);
}

// ---------------------------------------------------------------------------------------
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
function matchPrivateKey(text: string, at: number): RuleMatch | null {
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
function matchGcpServiceAccount(text: string, at: number): RuleMatch | null {
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
function urlCredentialRule(kind: 'basic-auth-url' | 'db-connection-string', basis: string): SecretRule {
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
const JWT = /(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{8,4096})\.eyJ[A-Za-z0-9_-]{8,65536}\.[A-Za-z0-9_-]{0,4096}(?![A-Za-z0-9_-])/y;
function acceptJwt(m: RegExpExecArray): boolean {
  const header = base64UrlJson(m[1] ?? '');
  return typeof header === 'object' && header !== null && typeof (header as Record<string, unknown>)['alg'] === 'string';
}

/** secretlint-rule-1password: `ops_` + base64 JSON. */
function accept1Password(m: RegExpExecArray): boolean {
  try {
    const json: unknown = JSON.parse(atob((m[1] ?? '').replace(/-/g, '+').replace(/_/g, '/')));
    return typeof json === 'object' && json !== null;
  } catch {
    return false;
  }
}

/**
 * Triggers for a credential-named key followed by an assignment, in the three usual cases;
 * the assignment is part of the trigger so that prose and code mentioning "token" or
 * "password" costs the prefilter nothing.
 */
function credentialKeyTriggers(): string[] {
  const assign = `(?:\\\\?["'])?\\s*(?:=>|:|=)`;
  const words = [
    ['pass(?:wo?r)?d', 'Pass(?:wo?r)?d', 'PASS(?:WO?R)?D'],
    ['secret(?:[_-]?[Kk]ey)?', 'Secret(?:[_-]?[Kk]ey)?', 'SECRET(?:[_-]?KEY)?'],
    ['token', 'Token', 'TOKEN'],
    ['api[_-]?[Kk]ey', 'Api[_-]?[Kk]ey', 'API[_-]?(?:KEY|Key)'],
  ];
  return words.flat().map((w) => w + assign);
}

// ---------------------------------------------------------------------------------------
// The rules. Order matters only between rules that match at the same index: the longest
// match wins, ties go to the earlier rule.

const AWS_EXAMPLE_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

export const SECRET_RULES: readonly SecretRule[] = [
  // secretlint-rule-aws, reportAWSAccessKey (behind its `enableIDScanRule`, off by default;
  // an access key id is what an attacker pairs with a leaked secret, so we always redact it).
  // AKIAIOSFODNN7EXAMPLE and the other documentation ids end in EXAMPLE and are skipped.
  patternRule(
    'aws-access-key',
    'secretlint-rule-aws (AWSAccessKeyID)',
    ['A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|3T[A-Z0-9])'],
    /\b(?:A3T[A-Z0-9]|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16}\b/y,
    { accept: (m) => !m[0].endsWith('EXAMPLE') },
  ),
  // secretlint-rule-aws, reportAWSSecretAccessKey: `aws_secret_access_key = <40>` and the
  // camelCase `SecretAccessKey` of AWS CLI / STS output. Anchored at "secret"; the value is
  // redacted, the key name kept.
  patternRule(
    'aws-secret-key',
    'secretlint-rule-aws (AWSSecretAccessKey)',
    ['SECRET_?ACCESS', 'secret_?[Aa]ccess', 'Secret_?[Aa]ccess'],
    /(?:SECRET|secret|Secret)_?(?:ACCESS|access|Access)_?(?:KEY|key|Key)\\?["']?\s*(?::|=>|=)\s*\\?["']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/dy,
    { groups: [1], accept: (m) => m[1] !== AWS_EXAMPLE_SECRET },
  ),
  // Not in the preset: the session token that comes with temporary AWS credentials (STS
  // `SessionToken`, `aws_session_token`); useless without the secret, but a credential.
  patternRule(
    'aws-session-token',
    'AWS STS credential output (not in the preset)',
    ['SESSION_?TOKEN', 'session_?[Tt]oken', 'Session_?[Tt]oken'],
    /(?:SESSION|session|Session)_?(?:TOKEN|token|Token)\\?["']?\s*(?::|=>|=)\s*\\?["']?([A-Za-z0-9/+=]{100,4096})(?![A-Za-z0-9/+=])/dy,
    { groups: [1] },
  ),
  // secretlint-rule-github: classic (prefix + 30 random + 6 CRC32 checksum), fine-grained,
  // and the 2026 app-installation format `ghs_<appId>_<JWT>`. The checksum is not checked:
  // a token with a wrong one is a test fixture at worst, and redacting that is harmless.
  patternRule(
    'github-token',
    'secretlint-rule-github (classic)',
    ['gh[pousr]_'],
    /(?<!\p{L})(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36}(?![A-Za-z0-9_])/uy,
  ),
  patternRule(
    'github-token',
    'secretlint-rule-github (app installation)',
    ['ghs_'],
    /(?<!\p{L})ghs_[0-9]{1,20}_[A-Za-z0-9_-]{1,1000}\.[A-Za-z0-9_-]{1,10000}\.[A-Za-z0-9_-]{1,1000}(?![A-Za-z0-9_-])/uy,
  ),
  patternRule(
    'github-token',
    'secretlint-rule-github (fine-grained)',
    ['github_pat_'],
    /(?<!\p{L})github_pat_[A-Za-z0-9_]{82}(?![A-Za-z0-9_])/uy,
  ),
  // secretlint-rule-slack; plus the legacy `xoxs` and refresh `xoxe` prefixes. A real token
  // has digits (team / user ids); a placeholder such as `xoxb-` + "your-bot-token" does not, and is skipped. At most 8
  // segments (real tokens have 3-5): the preset's unbounded `+` lets one rejected candidate
  // run to the end of a long dash-joined line, and every later trigger do the same.
  patternRule(
    'slack-token',
    'secretlint-rule-slack (SLACK_TOKEN)',
    ['xox[abposre]-', 'xapp-'],
    /\b(?:xoxb|xoxp|xapp|xoxa|xoxo|xoxr|xoxs|xoxe)-(?:\d-)?(?:[a-zA-Z0-9]{1,40}-){1,8}[a-zA-Z0-9]{1,40}\b/y,
    { accept: (m) => m[0].length >= 20 && /\d/.test(m[0]) },
  ),
  // secretlint-rule-slack (IncomingWebhook): the path is the credential; `https://` is kept.
  patternRule(
    'slack-webhook',
    'secretlint-rule-slack (IncomingWebhook)',
    ['hooks\\.slack\\.com\\/'],
    /hooks\.slack\.com\/(?:services|workflows|triggers)\/T[a-zA-Z0-9]{1,40}\/[AB][a-zA-Z0-9]{1,40}\/[a-zA-Z0-9]{1,80}/iy,
  ),
  // secretlint-rule-openai requires the `T3BlbkFJ` marker at a fixed offset; project,
  // service-account and admin keys have changed length before, so any long body after
  // those prefixes counts. Legacy `sk-` keys keep the preset's exact shape.
  patternRule(
    'openai-key',
    'secretlint-rule-openai',
    ['sk-(?:proj-|svcacct-|admin-|[A-Za-z0-9]{20}T3Bl)'],
    /(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,300}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})(?![A-Za-z0-9_-])/y,
  ),
  // secretlint-rule-anthropic (`sk-ant-api0N-`, 90-128 chars ending `AA`); we also take
  // admin and OAuth keys (`sk-ant-admin01-`, `sk-ant-oat01-`) and do not require the `AA`.
  patternRule(
    'anthropic-key',
    'secretlint-rule-anthropic',
    ['sk-ant-'],
    /(?<!\p{L})sk-ant-[a-z]{3,5}0\d-[A-Za-z0-9_-]{80,128}(?![A-Za-z0-9_-])/uy,
  ),
  // secretlint-rule-stripe (secret and restricted keys, live and test).
  patternRule(
    'stripe-key',
    'secretlint-rule-stripe',
    ['sk_(?:live|test)_', 'rk_(?:live|test)_'],
    /(?<!\p{L})(?:sk|rk)_(?:live|test)_[a-zA-Z0-9]{24,99}(?![a-zA-Z0-9])/uy,
  ),
  { kind: 'private-key', basis: 'secretlint-rule-privatekey', triggers: ['-----BEGIN'], match: matchPrivateKey },
  {
    kind: 'gcp-service-account',
    basis: 'secretlint-rule-gcp (PrivateKeyJSON)',
    triggers: ['private_key_id'],
    match: matchGcpServiceAccount,
  },
  // Google API key (not in the preset; gitleaks `gcp-api-key`, Google's documented shape).
  patternRule('gcp-api-key', 'gitleaks gcp-api-key', ['AIza'], /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/y),
  // secretlint-rule-npm (NPM_ACCESS_TOKEN; same 30 + 6-checksum layout as GitHub's).
  patternRule('npm-token', 'secretlint-rule-npm (NPM_ACCESS_TOKEN)', ['npm_'], /(?<!\p{L})npm_[A-Za-z0-9_]{36}(?![A-Za-z0-9_])/uy),
  // secretlint-rule-npm (Npmrc_authToken): `_authToken=<token>` in .npmrc, any token form
  // (legacy UUIDs too); `${NPM_TOKEN}` is skipped, as the preset does.
  patternRule('npm-token', 'secretlint-rule-npm (Npmrc_authToken)', ['_authToken'], /_authToken\s*=\s*([^\s$"'`][^\s"'`]{7,511})/dy, {
    groups: [1],
    accept: (m) => !isPlaceholderValue(m[1] ?? ''),
  }),
  patternRule('jwt', 'RFC 7519 / gitleaks jwt (not in the preset)', ['eyJ'], JWT, { accept: acceptJwt }),
  urlCredentialRule('basic-auth-url', 'secretlint-rule-basicauth'),
  urlCredentialRule('db-connection-string', 'secretlint-rule-database-connection-string'),
  // secretlint-rule-sendgrid: `SG.` + 22 + `.` + 43 (69 characters).
  patternRule(
    'sendgrid-key',
    'secretlint-rule-sendgrid',
    ['SG\\.'],
    /(?<!\p{L})SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/uy,
  ),
  patternRule(
    'shopify-token',
    'secretlint-rule-shopify',
    ['shp(?:pa|ca|at|ss)_'],
    /(?<!\p{L})(?:shppa|shpca|shpat|shpss)_[a-zA-Z0-9]{32,64}(?![a-zA-Z0-9])/uy,
  ),
  // secretlint-rule-gitlab (`glpat-`); plus GitLab's other documented token prefixes
  // (deploy, runner, pipeline trigger, feed, SCIM, incoming mail, CI build, agent).
  patternRule(
    'gitlab-token',
    'secretlint-rule-gitlab',
    ['gl(?:pat|dt|rt|ptt|ft|soat|imt|cbt|agent)-'],
    /(?<!\p{L})gl(?:pat|dt|rt|ptt|ft|soat|imt|cbt|agent)-[A-Za-z0-9_.-]{20,128}(?![A-Za-z0-9_-])/uy,
  ),
  patternRule(
    'grafana-token',
    'secretlint-rule-grafana (cloud API token)',
    ['glc_'],
    /(?<!\p{L})glc_[A-Za-z0-9+/]{32,400}={0,2}(?![A-Za-z0-9+/=])/uy,
  ),
  patternRule(
    'grafana-token',
    'secretlint-rule-grafana (service account)',
    ['glsa_'],
    /(?<!\p{L})glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}(?![A-Fa-f0-9])/uy,
  ),
  patternRule(
    'vault-token',
    'secretlint-rule-hashicorp-vault',
    ['hv[sbr]\\.'],
    /(?<!\p{L})(?:hvs\.[A-Za-z0-9_-]{90,120}|hvb\.[A-Za-z0-9_-]{138,300}|hvr\.[A-Za-z0-9_-]{90,120})(?![A-Za-z0-9_-])/uy,
  ),
  patternRule('groq-key', 'secretlint-rule-groq', ['gsk_'], /(?<!\p{L})gsk_[a-zA-Z0-9]{52}(?![a-zA-Z0-9])/uy),
  patternRule('huggingface-token', 'secretlint-rule-huggingface', ['hf_'], /(?<!\p{L})hf_[a-zA-Z]{34}(?![a-zA-Z])/uy),
  patternRule('linear-key', 'secretlint-rule-linear', ['lin_api_'], /(?<!\p{L})lin_api_[a-zA-Z0-9_]{32,128}(?![a-zA-Z0-9_])/uy),
  patternRule('notion-token', 'secretlint-rule-notion', ['ntn_'], /(?<!\p{L})ntn_[0-9]{11}[A-Za-z0-9]{35}(?![A-Za-z0-9])/uy),
  patternRule(
    '1password-token',
    'secretlint-rule-1password',
    ['ops_ey'],
    /(?<!\p{L})ops_(ey[A-Za-z0-9+/=_-]{100,1280}fQ={0,2})(?![A-Za-z0-9+/=])/uy,
    { accept: accept1Password },
  ),
  patternRule('vercel-token', 'secretlint-rule-vercel', ['vc[pciark]_'], /(?<!\p{L})vc[pciark]_[A-Za-z0-9]{20,60}(?![A-Za-z0-9])/uy),
  patternRule('databricks-token', 'secretlint-rule-databricks', ['dapi'], /(?<!\p{L})dapi[A-Fa-f0-9]{32}(?:-[0-9])?(?![A-Fa-f0-9])/uy),
  patternRule('docker-token', 'secretlint-rule-docker', ['dckr_pat_'], /(?<!\p{L})dckr_pat_[a-zA-Z0-9_-]{27}(?![a-zA-Z0-9_-])/uy),
  patternRule('figma-token', 'secretlint-rule-figma', ['figd_'], /(?<!\p{L})figd_[A-Za-z0-9_-]{40,200}(?![A-Za-z0-9_-])/uy),
  // secretlint-rule-cloudflare: prefix + 40 body + 8 hex CRC32 of the body.
  patternRule(
    'cloudflare-token',
    'secretlint-rule-cloudflare',
    ['cf(?:k|ut|at)_'],
    /(?<!\p{L})(?:cfk|cfut|cfat)_[A-Za-z0-9]{40}[0-9a-f]{8}(?![A-Za-z0-9])/uy,
  ),
  patternRule(
    'tailscale-key',
    'secretlint-rule-tailscale',
    ['tskey-'],
    /(?<!\p{L})tskey-[a-z]{2,20}-[0-9A-Za-z_]{8,40}-[0-9A-Za-z_]{16,60}(?![0-9A-Za-z_])/uy,
  ),

  // ----- generic, keyword-based (not in the preset) -----
  // `Authorization: Bearer <opaque token>` in logged requests, curl -v output, HAR files.
  patternRule(
    'authorization-header',
    'HTTP Authorization header (not in the preset)',
    ['Authorization', 'authorization', 'AUTHORIZATION'],
    /(?:authorization)\\?["']?\s*[:=]\s*\\?["']?(?:bearer|basic|token|bot|apikey)\s+([A-Za-z0-9._~+/=-]{12,4096})/diy,
    { groups: [1], generic: true, accept: (m) => !isPlaceholderValue(m[1] ?? '') },
  ),
  // A quoted value under a credential-named key (`"password": "..."`, `client_secret: '...'`,
  // `accessToken = "..."`), or an env line `DB_PASSWORD=...`. Pagination and LLM `token`
  // keys are excluded by requiring a credential word before `token`.
  patternRule(
    'credential-assignment',
    'credential-named key with a literal value (not in the preset)',
    credentialKeyTriggers(),
    /(?:pass(?:wo?r)?d|secret(?:[_-]?key)?|(?<=(?:access|refresh|auth|id|bearer|private|api|session|client)[_-]?)token|api[_-]?key)\\?["']?\s*(?:=>|:|=)\s*\\?["']([^"'\\\s]{8,256})\\?["']/diy,
    { groups: [1], generic: true, accept: (m) => !isPlaceholderValue(m[1] ?? '') },
  ),
  patternRule(
    'credential-assignment',
    'credential-named env variable (not in the preset)',
    ['PASS(?:WO?R)?D=', 'SECRET(?:_KEY)?=', 'TOKEN=', 'API_?KEY='],
    /(?:PASS(?:WO?R)?D|SECRET(?:_KEY)?|(?<=[A-Z]_)TOKEN|API_?KEY)=([^\s"'$`\\][^\s"'`\\]{7,255})(?![^\s"'`\\])/dy,
    { groups: [1], generic: true, accept: (m) => !isPlaceholderValue(m[1] ?? '') },
  ),
];

/** Every kind the secret rules can report, sorted. */
export const SECRET_KINDS: readonly string[] = [...new Set(SECRET_RULES.map((r) => r.kind))].sort();
