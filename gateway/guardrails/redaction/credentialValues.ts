/**
 * Whether a credential-shaped value is a real credential: the placeholders documentation
 * and templates use, the keys whose value is a credential (`password`, `apiKey`,
 * `client_secret`, ...), and the prefilter triggers for such keys.
 */

// ---------------------------------------------------------------------------------------
// Placeholders: documentation and templates show credential-shaped strings that are not
// credentials. Redacting them is harmless but counts as a false positive in findings.

/**
 * Template variables (`${X}`, `{{x}}`, `%X%`, `$(x)`, `<your-token>`, and `$X` at the
 * start), as secretlint's basicauth rule; it takes `$X` anywhere, which would skip real
 * passwords such as `o1Xu$NjQ`.
 */
export const TEMPLATE_VARIABLE =
  /\$\{[^}]{1,50}\}|\{\{[^}]{1,50}\}\}|\{[^}]{1,50}\}|%[A-Z_]{1,30}%|^\$[A-Z_]{1,30}|\$\([^)]{1,50}\)|<[^>]{1,50}>/;
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

/**
 * Triggers for a credential-named key followed by an assignment, in the three usual cases;
 * the assignment is part of the trigger so that prose and code mentioning "token" or
 * "password" costs the prefilter nothing.
 */
export function credentialKeyTriggers(): string[] {
  const assign = `(?:\\\\?["'])?\\s*(?:=>|:|=)`;
  const words = [
    ['pass(?:wo?r)?d', 'Pass(?:wo?r)?d', 'PASS(?:WO?R)?D'],
    ['secret(?:[_-]?[Kk]ey)?', 'Secret(?:[_-]?[Kk]ey)?', 'SECRET(?:[_-]?KEY)?'],
    ['token', 'Token', 'TOKEN'],
    ['api[_-]?[Kk]ey', 'Api[_-]?[Kk]ey', 'API[_-]?(?:KEY|Key)'],
  ];
  return words.flat().map((w) => w + assign);
}
