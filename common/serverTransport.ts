/**
 * How the gateway reaches an MCP server: the `transport` block shared by the gateway's
 * local config and the org policy's catalog.
 */
import { z } from 'zod';
import { isSecureOrLoopback } from './net/loopback';

/** Ids appear in URLs (`/mcp/<id>`) and become VS Code's `serverInfo.name`, so keep them plain. */
export const ServerIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and dashes (max 63), starting with a letter or digit');

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

/**
 * Credential mode `user-oauth`: the gateway signs the user in to the server's own
 * authorization server. Registration, in the spec's order: `clientId` (a client the org
 * registered ahead of time), else `clientMetadataUrl` (a client ID metadata document the
 * org hosts, used where the authorization server supports them), else dynamic registration.
 */
export const UserOAuthSettingsSchema = z.strictObject({
  mode: z.literal('user-oauth'),
  /** Asked for when neither the server's challenge nor its metadata names scopes. */
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be an OAuth scope token')).optional(),
  clientId: z.string().min(1).optional(),
  clientMetadataUrl: z
    .url({ protocol: /^https$/ })
    .refine((url) => new URL(url).pathname !== '/', { message: 'must be an https URL with a path' })
    .optional(),
});

/** Why a `user-oauth` server cannot be reached as configured, or undefined: its tokens travel only over https Streamable HTTP (http only on loopback). */
export function userOAuthTransportProblem(transport: ServerTransportConfig): { field: 'type' | 'url'; message: string } | undefined {
  if (transport.type !== 'streamable-http') return { field: 'type', message: 'a user-oauth server must be streamable-http' };
  if (!isSecureOrLoopback(new URL(transport.url)))
    return { field: 'url', message: 'a user-oauth server must be https (http only on loopback): its tokens must not travel in clear text' };
  return undefined;
}
