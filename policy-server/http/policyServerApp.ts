/**
 * The policy server's HTTP front (express 5): routes from each capability folder, the
 * authentication in front of them, and one error format. Async route errors reach
 * `errorHandler` through express 5's promise handling.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RelaySessions } from '../relay/relaySessions';
import { REGISTRY_PATH, registryCaller, registryCors, registryRoutes } from '../registry/registryRoutes';
import express, { type Express } from 'express';
import { auditRoutes } from '../audit/auditRoutes';
import type { AuditStore } from '../audit/auditStore';
import type { BearerAuthenticator } from '../auth/bearerAuthenticator';
import { effectivePolicyRoute } from '../bundles/effectivePolicyRoute';
import type { EffectivePolicyBundles } from '../bundles/effectivePolicyBundles';
import { eventStreamRoute } from '../events/eventStreamRoute';
import type { PolicyEventHub } from '../events/policyEventHub';
import { jwksRoute, keyAdminRoutes } from '../keys/keyRoutes';
import type { SigningKeyRing } from '../keys/signingKeyRing';
import type { Logger } from '../../common/log/logger';
import { policyRoutes } from '../policies/policyRoutes';
import type { PolicyService } from '../policies/policyService';
import { revocationRoutes } from '../revocations/revocationRoutes';
import type { ReviewQueue } from '../reviews/reviewQueue';
import { reviewRoutes } from '../reviews/reviewRoutes';
import { relayRoutes } from '../relay/relayRoute';
import type { SecretStore } from '../secrets/secretStore';
import { SUBJECT_ISSUER_PATH, type SubjectTokens } from '../tokenExchange/subjectTokens';
import type { UpstreamTokens } from '../tokenExchange/upstreamTokens';
import type { RevocationList } from '../revocations/revocationList';
import { errorHandler, notFound } from './apiErrors';
import { authenticateCaller, authenticateRelayCaller, requireAdmin } from './callerAuthentication';
import type { AuthorizationServer } from '../authorization/authorizationServer';
import type { RelayAccess } from '../authorization/relayAccess';
import { POLICY_SERVER_PATHS as PATHS } from '../../common/policy/policyServerApi';

/** The gateway's own body limit for MCP messages. */
const RELAY_MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface PolicyServerAppDeps {
  authenticator: BearerAuthenticator;
  policies: PolicyService;
  bundles: EffectivePolicyBundles;
  revocations: RevocationList;
  events: PolicyEventHub;
  keys: SigningKeyRing;
  audit: AuditStore;
  reviews: ReviewQueue;
  /** The shared-key store; without it the relay refuses every call. */
  secrets: SecretStore | undefined;
  maxPolicyBytes: number;
  /** This server's public base URL (the bundles' issuer), for URLs it hands out. */
  publicUrl: string;
  /** Relay session owners shared by replicas (PostgreSQL); in memory when absent. */
  relaySessions?: RelaySessions;
  /** `relay-oauth`: the subject-token issuer's public routes, and the per-user tokens the relay adds (with a secret store only). */
  tokenExchange?: { subjects: SubjectTokens; upstreamTokens: UpstreamTokens };
  /** `--registry-anonymous`: the registry answers callers without a token with what `*` rules give. */
  registryAnonymous?: boolean;
  /** The MCP authorization server (`/oauth`) and the relay's acceptance of its tokens, when configured. */
  authorization?: { server: AuthorizationServer; relayAccess: RelayAccess };
  log: Logger;
}

export function createPolicyServerApp(deps: PolicyServerAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // only the bundle route sets ETags, on purpose
  app.use((req, res, next) => {
    res.set({ 'X-Content-Type-Options': 'nosniff' });
    const started = performance.now();
    res.on('finish', () =>
      deps.log.debug('request', {
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
      }),
    );
    next();
  });

  app.get(PATHS.health, (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  app.get(PATHS.jwks, jwksRoute(deps.keys));

  const authenticated = authenticateCaller(deps.authenticator, deps.revocations);
  const admin = [authenticated, requireAdmin(deps.policies)];
  app.get(PATHS.effectivePolicy, authenticated, effectivePolicyRoute(deps.bundles));
  app.get(PATHS.events, authenticated, eventStreamRoute(deps.events, deps.policies));
  app.use(PATHS.policies, ...admin, policyRoutes(deps.policies, deps.maxPolicyBytes));
  app.use(PATHS.revocations, ...admin, revocationRoutes(deps.revocations));
  app.use('/v1/keys', ...admin, keyAdminRoutes(deps.keys, deps.policies, deps.log));
  // Any user posts their own events (revoked users too: their last calls matter most); only admins read them.
  const ingest = authenticateCaller(deps.authenticator, deps.revocations, { acceptRevoked: true });
  app.use(PATHS.audit, auditRoutes(deps.audit, { ingest, read: [authenticated, requireAdmin(deps.policies)] }));
  app.use(PATHS.reviews, authenticated, reviewRoutes(deps.reviews));
  if (deps.tokenExchange) app.use(SUBJECT_ISSUER_PATH, deps.tokenExchange.subjects.routes());
  if (deps.authorization) {
    app.use(deps.authorization.server.routes());
    app.use(deps.authorization.relayAccess.routes());
  }
  app.use(
    PATHS.relay,
    authenticateRelayCaller(deps.authenticator, deps.revocations, deps.authorization?.relayAccess),
    relayRoutes({
      policies: deps.policies,
      secrets: deps.secrets,
      ...(deps.tokenExchange ? { upstreamTokens: deps.tokenExchange.upstreamTokens } : {}),
      audit: deps.audit,
      maxBodyBytes: RELAY_MAX_BODY_BYTES,
      log: deps.log.child({ component: 'relay' }),
      ...(deps.relaySessions ? { sessions: deps.relaySessions } : {}),
      reviews: deps.reviews,
    }),
  );

  // The catalog as an MCP Registry for VS Code's gallery: CORS first (preflights carry no token), then the caller's own catalog.
  app.use(
    REGISTRY_PATH,
    registryCors,
    registryCaller(authenticated, deps.registryAnonymous === true),
    registryRoutes(deps.policies, deps.publicUrl),
  );

  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}

/**
 * The node:http server. It binds before the app exists because the default issuer URL
 * contains the bound port (`--listen 127.0.0.1:0`); until `serve` installs the app every
 * request gets a 503.
 */
export class PolicyServerHttp {
  private readonly server: Server;
  private handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res
      .writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '1' })
      .end(JSON.stringify({ error: 'starting', message: 'The policy server is starting; retry in a moment.' }));
  };

  constructor() {
    this.server = createServer((req, res) => this.handler(req, res));
    // Gateways hold event streams for hours; only slow request heads and bodies are cut off.
    this.server.requestTimeout = 60_000;
    this.server.headersTimeout = 20_000;
  }

  serve(app: Express): void {
    this.handler = app;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
