/**
 * How the gateway reaches an MCP server: the `transport` block shared by the gateway's
 * local config and the org policy's catalog.
 */
import { z } from 'zod';

/** Ids appear in URLs (`/mcp/<id>`) and become VS Code's `serverInfo.name`, so keep them plain. */
export const ServerIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and dashes (max 63), starting with a letter or digit');

/** Environment variable names only; values come from the gateway's own environment. */
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

export const StdioTransportSchema = z.strictObject({
  type: z.literal('stdio'),
  /** Pinned executable: absolute, or relative to the config file. Never run through a shell. */
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  /** Names of variables passed through from the gateway's environment; nothing else is. */
  envAllowlist: z.array(EnvName).default(['PATH', 'HOME']),
  /** Literal, non-secret values (secrets come from the credential store, never from here). */
  env: z.record(EnvName, z.string()).default({}),
  cwd: z.string().optional(),
});

export const HttpTransportSchema = z.strictObject({
  type: z.enum(['streamable-http', 'sse']),
  url: z.url({ protocol: /^https?$/ }).refine((url) => !/^https?:\/\/[^/]*@/.test(url), {
    message: 'must not carry credentials; credentials come from the credential store, never the config',
  }),
});

export const ServerTransportSchema = z.discriminatedUnion('type', [StdioTransportSchema, HttpTransportSchema]);

export type StdioTransportConfig = z.infer<typeof StdioTransportSchema>;
export type HttpTransportConfig = z.infer<typeof HttpTransportSchema>;
export type ServerTransportConfig = z.infer<typeof ServerTransportSchema>;

/** Per-server redaction settings: secrets are always redacted; personal data only when asked. */
export const ServerRedactionSchema = z.strictObject({
  /** Also redact emails, phone numbers, Luhn-valid card numbers and IBANs with valid check digits. */
  pii: z.boolean().default(false),
});
