/**
 * The approved catalog as an MCP Registry (`/v0.1/servers`, the registry API's read side),
 * filtered to the caller's effective policy: an org can point VS Code's MCP gallery
 * (`chat.mcp.gallery.serviceUrl`) at the policy server, and a developer sees exactly the
 * servers the policy lets them use. A request needs the caller's IdP token; a gallery that
 * cannot send one (VS Code's sends none) gets an anonymous caller's catalog only when the
 * server runs with `--registry-anonymous`: the servers the policy gives to `*`, nothing a
 * group or user rule gives. CORS allows any origin because a token travels in a header,
 * never a cookie, so no ambient credential is exposed.
 *
 * Each entry is a server.json: `name` `<namespace>/<id>` (namespace `com.gatehouse.<org>`),
 * `version` `1.0.<policy version>` (it moves with the policy), `remotes` for Streamable
 * HTTP and SSE servers (a `shared-key` server's remote is its relay URL here), nothing to
 * install for stdio servers (they run through the Gatehouse gateway, not from a package).
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { CallerIdentity } from '../../common/policy/identity';
import { compileEffectivePolicy } from '../../common/policy/effectivePolicy';
import type { CatalogServerEntry } from '../../common/policy/policyDocument';
import { POLICY_SERVER_PATHS } from '../../common/policy/policyServerApi';
import { ApiError } from '../http/apiErrors';
import { callerOf } from '../http/callerAuthentication';
import type { PolicyService } from '../policies/policyService';

export const REGISTRY_PATH = '/v0.1';
const SERVER_SCHEMA = 'https://static.modelcontextprotocol.io/schemas/2025-10-17/server.schema.json';
const OFFICIAL_META = 'io.modelcontextprotocol.registry/official';
const DEFAULT_LIMIT = 30;
const MAX_LIMIT = 100;

export interface RegistryServerResponse {
  server: {
    $schema: string;
    name: string;
    title?: string;
    description: string;
    version: string;
    remotes?: Array<{ type: 'streamable-http' | 'sse'; url: string }>;
  };
  _meta: Record<string, { status: 'active'; publishedAt: string; updatedAt: string; isLatest: boolean }>;
}

/** CORS for the gallery: any origin, GET only, the Authorization header allowed. */
export function registryCors(req: Request, res: Response, next: () => void): void {
  res.set({
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Methods': 'GET, OPTIONS',
    'Access-Control-Allow-Headers': 'Authorization, Content-Type',
    'Access-Control-Max-Age': '600',
    Vary: 'Origin',
  });
  if (req.method === 'OPTIONS') return void res.status(204).end();
  next();
}

/** Nobody in particular: no sub, no groups, no email; only `*` rules reach it. */
const ANONYMOUS: CallerIdentity = { sub: '', issuer: 'anonymous', claims: {} };

/** The caller: authenticated when a token is sent (or always, unless anonymous reads are allowed). */
export function registryCaller(authenticated: RequestHandler, allowAnonymous: boolean): RequestHandler {
  return (req, res, next) => {
    if (allowAnonymous && req.get('authorization') === undefined) {
      res.locals.caller = ANONYMOUS;
      return next();
    }
    return authenticated(req, res, next);
  };
}

export function registryRoutes(policies: PolicyService, publicUrl: string): Router {
  const router = Router();

  const catalogFor = async (res: Response) => {
    const current = await policies.current();
    if (!current) throw new ApiError(503, 'no_policy', 'No policy is published yet.');
    const published = (await policies.version(current.version)).publishedAt;
    const effective = compileEffectivePolicy(current.document, current.version, callerOf(res));
    const namespace = `com.gatehouse.${current.document.org.toLowerCase().replace(/[^a-z0-9.-]/g, '-')}`;
    return effective.servers.map((entry) => toRegistryEntry(entry, namespace, current.version, published, publicUrl));
  };

  router.get('/servers', async (req, res) => {
    const limit = Math.min(MAX_LIMIT, Math.max(1, Number.parseInt(String(req.query.limit ?? DEFAULT_LIMIT), 10) || DEFAULT_LIMIT));
    const search = typeof req.query.search === 'string' ? req.query.search.toLowerCase() : undefined;
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    let entries = (await catalogFor(res)).sort((a, b) => a.server.name.localeCompare(b.server.name));
    if (search)
      entries = entries.filter((e) => `${e.server.name} ${e.server.title ?? ''} ${e.server.description}`.toLowerCase().includes(search));
    // The cursor is the last name returned: opaque to clients, stable across pages.
    if (cursor) entries = entries.filter((e) => e.server.name > cursor);
    const page = entries.slice(0, limit);
    const more = entries.length > limit;
    res
      .set('Cache-Control', 'private, no-store')
      .json({ servers: page, metadata: { count: page.length, ...(more ? { nextCursor: page.at(-1)!.server.name } : {}) } });
  });

  const one = async (req: Request, res: Response, all: boolean) => {
    const name = decodeURIComponent(String(req.params.serverName));
    const entry = (await catalogFor(res)).find((e) => e.server.name === name);
    if (!entry) throw new ApiError(404, 'not_found', 'No such server in your catalog.');
    const version = req.params.version === undefined ? undefined : String(req.params.version);
    if (all) return void res.set('Cache-Control', 'private, no-store').json({ servers: [entry], metadata: { count: 1 } });
    if (version !== 'latest' && version !== entry.server.version)
      throw new ApiError(404, 'not_found', `Only the current version (${entry.server.version}) is served.`);
    res.set('Cache-Control', 'private, no-store').json(entry);
  };
  router.get('/servers/:serverName/versions', (req, res) => one(req, res, true));
  router.get('/servers/:serverName/versions/:version', (req, res) => one(req, res, false));
  return router;
}

function toRegistryEntry(
  entry: CatalogServerEntry,
  namespace: string,
  policyVersion: number,
  publishedAt: string,
  publicUrl: string,
): RegistryServerResponse {
  const remote =
    entry.credential.mode === 'shared-key'
      ? {
          type: 'streamable-http' as const,
          url: new URL(
            `${POLICY_SERVER_PATHS.relay.replace(/^\//, '')}/${entry.id}/mcp`,
            publicUrl.endsWith('/') ? publicUrl : `${publicUrl}/`,
          ).href,
        }
      : entry.transport.type === 'stdio'
        ? undefined
        : { type: entry.transport.type, url: entry.transport.url };
  return {
    server: {
      $schema: SERVER_SCHEMA,
      name: `${namespace}/${entry.id}`,
      title: entry.title,
      description: entry.description ?? entry.title,
      version: `1.0.${policyVersion}`,
      ...(remote ? { remotes: [remote] } : {}),
    },
    _meta: { [OFFICIAL_META]: { status: 'active', publishedAt, updatedAt: publishedAt, isLatest: true } },
  };
}
