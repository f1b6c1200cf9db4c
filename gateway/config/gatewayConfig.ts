/**
 * The gateway's local configuration file (YAML): which upstream MCP servers it fronts and
 * how it listens. Until the signed policy bundle lands (policy issue) this file is the
 * catalog. Every field is validated at load time; errors name the file, line and column.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { z } from 'zod';

/** Ids appear in URLs (`/mcp/<id>`) and become VS Code's `serverInfo.name`, so keep them plain. */
const ServerId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and dashes (max 63), starting with a letter or digit');

/** Environment variable names only; values come from the gateway's own environment. */
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

const StdioTransport = z.strictObject({
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

const HttpTransport = z.strictObject({
  type: z.enum(['streamable-http', 'sse']),
  url: z.url({ protocol: /^https?$/ }).refine((url) => !/^https?:\/\/[^/]*@/.test(url), {
    message: 'must not carry credentials; credentials come from the credential store, never the config',
  }),
});

const ServerEntry = z.strictObject({
  id: ServerId,
  title: z.string().min(1).optional(),
  description: z.string().optional(),
  enabled: z.boolean().default(true),
  transport: z.discriminatedUnion('type', [StdioTransport, HttpTransport]),
});

const GatewaySection = z.strictObject({
  /** Request bodies above this get 413 before they are parsed. */
  maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
  /** How long an upstream may take to answer `initialize` before it counts as failed. */
  upstreamInitializeTimeoutMs: z.number().int().positive().default(15_000),
});

export const GatewayConfigSchema = z.strictObject({
  servers: z.array(ServerEntry).min(1),
  gateway: GatewaySection.default({ maxBodyBytes: 4 * 1024 * 1024, upstreamInitializeTimeoutMs: 15_000 }),
}).superRefine((config, ctx) => {
  const seen = new Set<string>();
  config.servers.forEach((server, index) => {
    if (seen.has(server.id)) {
      ctx.addIssue({ code: 'custom', path: ['servers', index, 'id'], message: `duplicate server id "${server.id}"` });
    }
    seen.add(server.id);
  });
});

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type ServerConfig = GatewayConfig['servers'][number];
export type StdioTransportConfig = z.infer<typeof StdioTransport>;
export type HttpTransportConfig = z.infer<typeof HttpTransport>;

export class ConfigError extends Error {
  constructor(readonly file: string, readonly problems: string[]) {
    super(`Invalid gateway config ${file}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses and validates YAML text. `file` is only used in messages and to resolve relative paths. */
export function parseGatewayConfig(text: string, file: string): GatewayConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      return `${file}:${pos?.line ?? 0}:${pos?.col ?? 0}: ${e.message.split('\n')[0]}`;
    }));
  }
  const result = GatewayConfigSchema.safeParse(doc.toJS());
  if (!result.success) {
    throw new ConfigError(file, result.error.issues.map((issue) => {
      const node = nodeAt(doc.contents, issue.path);
      const pos = node?.range ? lineCounter.linePos(node.range[0]) : undefined;
      const where = issue.path.length > 0 ? issue.path.join('.') : '(root)';
      return `${file}:${pos?.line ?? 1}:${pos?.col ?? 1}: ${where}: ${issue.message}`;
    }));
  }
  return resolvePaths(result.data, dirname(file));
}

export function loadGatewayConfig(file: string): GatewayConfig {
  const absolute = resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new ConfigError(absolute, [`cannot read file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  return parseGatewayConfig(text, absolute);
}

/** Finds the deepest YAML node along a validation path so errors point at the right line. */
function nodeAt(root: unknown, path: readonly PropertyKey[]): Node | undefined {
  let node = root as Node | undefined;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === key);
      if (!pair) return node;
      node = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key] as Node | undefined;
      if (!item) return node;
      node = item;
    } else {
      return node;
    }
  }
  return node;
}

/** Relative commands and working directories are pinned to the config file's folder, not the caller's cwd. */
function resolvePaths(config: GatewayConfig, baseDir: string): GatewayConfig {
  for (const server of config.servers) {
    const t = server.transport;
    if (t.type !== 'stdio') continue;
    if (!isAbsolute(t.command) && (t.command.includes('/') || t.command.startsWith('.'))) {
      t.command = resolve(baseDir, t.command);
    }
    t.cwd = t.cwd ? resolve(baseDir, t.cwd) : baseDir;
  }
  return config;
}
