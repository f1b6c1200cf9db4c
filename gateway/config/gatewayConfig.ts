/**
 * The gateway's local configuration file (YAML): which upstream MCP servers it fronts and
 * how it listens. Until the signed policy bundle lands (policy issue) this file is the
 * catalog. Every field is validated at load time; errors name the file, line and column.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import {
  ServerIdSchema,
  ServerRedactionSchema,
  ServerTransportSchema,
  UserOAuthSettingsSchema,
  userOAuthTransportProblem,
} from '../../common/serverTransport';
import { isSecureOrLoopback } from '../../common/net/loopback';
import { DocumentError, loadYamlFile, parseYamlDocument, type DocumentKind } from '../../common/yamlDocument';
import type { UpstreamAuthorization } from '../upstream/upstreamAuthorization';

const ServerEntry = z.strictObject({
  id: ServerIdSchema,
  title: z.string().min(1).optional(),
  description: z.string().optional(),
  enabled: z.boolean().default(true),
  transport: ServerTransportSchema,
  redaction: ServerRedactionSchema.default({ pii: false }),
  /** Whether the server's own tool annotations (readOnlyHint...) are believed. */
  trusted: z.boolean().default(false),
  /** Per-tool risk; wins over the server's annotations (see guardrails/risk). */
  tools: z.record(z.string().min(1), z.strictObject({ risk: z.enum(['read', 'write', 'destructive']).optional() })).default({}),
  credential: z
    .discriminatedUnion('mode', [
      z.strictObject({ mode: z.literal('none') }),
      UserOAuthSettingsSchema.extend({
        /** A file (0600) holding the pre-registered client's secret: confidential clients on this machine only. */
        clientSecretFile: z.string().min(1).optional(),
      }),
      /** Enterprise-managed authorization (ID-JAG): gateway/upstreamAuth/enterpriseAuthorization.ts. */
      z.strictObject({
        mode: z.literal('enterprise-managed'),
        /**
         * The server's authorization server (its issuer), pinned: the client secret and the
         * ID-JAG go to this one alone, never to one the server's own metadata names instead.
         */
        authorizationServer: z.url({ protocol: /^https?$/ }),
        /** This client at the server's authorization server (registered there by the admin). */
        clientId: z.string().min(1),
        /** A file (0600) holding that client's secret, if it is confidential. */
        clientSecretFile: z.string().min(1).optional(),
        /** The org's IdP that issues the identity assertions, and this client there. */
        idp: z.strictObject({
          issuer: z.url({ protocol: /^https?$/ }),
          clientId: z.string().min(1),
          /** A file (0600) holding the person's ID token from their sign-in at the IdP. */
          idTokenFile: z.string().min(1),
        }),
      }),
    ])
    .default({ mode: 'none' }),
});

export const GatewaySettingsSchema = z.strictObject({
  /** Request bodies above this get 413 before they are parsed. */
  maxBodyBytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  /** How long an upstream may take to answer `initialize` before it counts as failed. */
  upstreamInitializeTimeoutMs: z.number().int().positive().default(15_000),
  /** `lazy`: each upstream starts when a client first asks for it; `eager`: all start at launch (failures show at once). */
  upstreamStart: z.enum(['lazy', 'eager']).default('lazy'),
});

export const GatewayConfigSchema = z
  .strictObject({
    servers: z.array(ServerEntry).min(1),
    gateway: GatewaySettingsSchema.default({ maxBodyBytes: 4 * 1024 * 1024, upstreamInitializeTimeoutMs: 15_000, upstreamStart: 'lazy' }),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.servers.forEach((server, index) => {
      if (server.credential.mode === 'user-oauth' || server.credential.mode === 'enterprise-managed') {
        const problem = userOAuthTransportProblem(server.transport);
        if (problem) ctx.addIssue({ code: 'custom', path: ['servers', index, 'transport', problem.field], message: problem.message });
      }
      if (server.credential.mode === 'enterprise-managed') {
        if (!isSecureOrLoopback(new URL(server.credential.idp.issuer)))
          ctx.addIssue({
            code: 'custom',
            path: ['servers', index, 'credential', 'idp', 'issuer'],
            message: 'the IdP must be https (http only on loopback): the ID token must not travel in clear text',
          });
        if (!isSecureOrLoopback(new URL(server.credential.authorizationServer)))
          ctx.addIssue({
            code: 'custom',
            path: ['servers', index, 'credential', 'authorizationServer'],
            message: 'the authorization server must be https (http only on loopback): the client secret must not travel in clear text',
          });
      }
      if (server.credential.mode === 'user-oauth') {
        if (server.credential.clientSecretFile && !server.credential.clientId) {
          ctx.addIssue({
            code: 'custom',
            path: ['servers', index, 'credential', 'clientSecretFile'],
            message: 'a client secret needs the clientId it belongs to',
          });
        }
      }
      if (seen.has(server.id)) {
        ctx.addIssue({ code: 'custom', path: ['servers', index, 'id'], message: `duplicate server id "${server.id}"` });
      }
      seen.add(server.id);
    });
  });

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type ServerConfig = GatewayConfig['servers'][number] & {
  /**
   * Credentials for HTTP upstreams, asked for each request (never part of the config or its
   * comparison): the relay's IdP token for `shared-key` servers, the user's own OAuth tokens
   * for `user-oauth` servers.
   */
  authorization?: UpstreamAuthorization;
  /** Reached through the policy server's relay (a `shared-key` server): reviewer approvals travel with the call. */
  viaRelay?: true;
};
export type { HttpTransportConfig, StdioTransportConfig } from '../../common/serverTransport';

/** A config file that cannot be used; `problems` are `file:line:col: path: message` lines. */
export class ConfigError extends DocumentError {}

const GATEWAY_CONFIG: DocumentKind = { name: 'gateway config', error: ConfigError };

/** Parses and validates YAML text. `file` is only used in messages and to resolve relative paths. */
export function parseGatewayConfig(text: string, file: string): GatewayConfig {
  return resolvePaths(parseYamlDocument(text, file, GatewayConfigSchema, GATEWAY_CONFIG).value, dirname(file));
}

export function loadGatewayConfig(file: string): GatewayConfig {
  return loadYamlFile(file, GATEWAY_CONFIG, parseGatewayConfig);
}

/** Relative commands and working directories are pinned to the config file's folder, not the caller's cwd. */
function resolvePaths(config: GatewayConfig, baseDir: string): GatewayConfig {
  for (const server of config.servers) {
    const credential = server.credential;
    if (credential.mode !== 'none' && credential.clientSecretFile)
      credential.clientSecretFile = resolve(baseDir, credential.clientSecretFile);
    if (credential.mode === 'enterprise-managed') credential.idp.idTokenFile = resolve(baseDir, credential.idp.idTokenFile);
    const t = server.transport;
    if (t.type !== 'stdio') continue;
    if (!isAbsolute(t.command) && (t.command.includes('/') || t.command.startsWith('.'))) {
      t.command = resolve(baseDir, t.command);
    }
    t.cwd = t.cwd ? resolve(baseDir, t.cwd) : baseDir;
  }
  return config;
}
