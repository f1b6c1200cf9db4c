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
 * from the preset the rule says so. `test/unit/guardrails/secretCorpusRealism.unit.test.ts` runs
 * secretlint itself over the same corpus to keep the two in step.
 *
 * Each rule has `triggers`: short regex fragments for the distinctive start of the secret
 * (a prefix such as `ghp_`, or a keyword such as `private_key_id`), each beginning with a
 * literal character. The redactor joins every trigger into one prefilter regex, factored by
 * that first character, and calls `match` only where a trigger occurs, with `at` = the
 * trigger's index, and only for the rules with a trigger starting with that character.
 * Patterns are sticky (`y`), bounded, and never nest unbounded quantifiers, so a
 * multi-megabyte line costs linear time.
 *
 * This file is the rule table; what a rule is lives in secretRule.ts, placeholder and
 * credential-key checks in credentialValues.ts, multi-part shapes (PEM keys, GCP JSON, URL
 * userinfo, JWT) in structuredSecretShapes.ts.
 */
import { credentialKeyTriggers, isPlaceholderValue } from './credentialValues';
import { patternRule, type SecretRule } from './secretRule';
import { JWT, accept1Password, acceptJwt, matchGcpServiceAccount, matchPrivateKey, urlCredentialRule } from './structuredSecretShapes';

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
