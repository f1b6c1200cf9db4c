/**
 * The policy server's HTTP API as the gateway and the `gatehouse policy` CLI see it: paths,
 * response bodies and push events. Every error body is `ApiErrorBody`.
 */

/** One published version, without its text. */
export interface PolicyVersionSummary {
  /** 1, 2, 3... assigned by the store, never reused. */
  version: number;
  /** Hex SHA-256 of the YAML text (UTF-8). */
  sha256: string;
  publishedAt: string;
  /** `sub` of the admin who published it, or `bootstrap` for the file given at first start. */
  publishedBy: string;
  /** Set when this version republished an older one. */
  rolledBackFrom?: number;
}

export interface RevocationRecord {
  id: string;
  /** The revoked user's `sub`. */
  sub: string;
  /** When present only that session (the IdP's `sid` claim) is revoked, not the whole user. */
  sessionId?: string;
  revokedAt: string;
  revokedBy: string;
  reason?: string;
}

export const POLICY_SERVER_PATHS = {
  health: '/healthz',
  jwks: '/.well-known/jwks.json',
  policies: '/v1/policies',
  policyDiff: '/v1/policies/diff',
  rollback: '/v1/policies/rollback',
  effectivePolicy: '/v1/effective-policy',
  revocations: '/v1/revocations',
  events: '/v1/events',
  rotateKey: '/v1/keys/rotate',
} as const;

/** Content type of `GET /v1/effective-policy`: the body is the compact JWS (see common/policy/policyBundle.ts). */
export const BUNDLE_CONTENT_TYPE = 'application/jwt';
/** Content types `POST /v1/policies` accepts for the YAML body. */
export const POLICY_CONTENT_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'] as const;

export interface ApiErrorBody {
  /** Stable machine code: invalid_policy, invalid_request, unauthorized, forbidden, revoked, not_found, no_policy, ... */
  error: string;
  /** What happened and what to do, for a person. */
  message: string;
  /** `invalid_policy` only: `file:line:col: path: message` per problem. */
  problems?: string[];
}

/** `POST /v1/policies` (201, or 200 with `unchanged` when the text equals the current version). */
export interface PublishResponse {
  version: number;
  sha256: string;
  unchanged?: true;
}

/** `GET /v1/policies`. */
export interface PolicyHistoryResponse {
  current: number | null;
  versions: PolicyVersionSummary[];
}

/** `POST /v1/policies/rollback` body `{version}` -> 201. */
export interface RollbackResponse {
  version: number;
  rolledBackFrom: number;
  sha256: string;
}

/** `GET /v1/revocations`, `POST /v1/revocations` body `{sub, sessionId?, reason?}` -> 201 `{revocation}`. */
export interface RevocationsResponse {
  revocations: RevocationRecord[];
}

/** `POST /v1/keys/rotate` -> 201. */
export interface RotateKeyResponse {
  kid: string;
  previousKid?: string;
  /** The previous public key stays in the JWKS until then (its last bundle's expiry). */
  previousServedUntil?: string;
}

/**
 * Server-sent events on `GET /v1/events`: `event: policy` on connect and on every publish
 * (fetch the effective policy again), `event: revoked` to the revoked user's own streams
 * (drop the cached bundle; the stream then ends). Comments (`: heartbeat`) every 15 s.
 */
export type PolicyServerEvent =
  | { event: 'policy'; data: { version: number } }
  | { event: 'revoked'; data: { sub: string; sessionId?: string } };

export interface PolicyServerReadyLine {
  event: 'ready';
  /** Where the server listens. */
  url: string;
  /** `iss` of every bundle it signs. */
  issuer: string;
  /** Current signing key id. */
  kid: string;
  /** Current policy version, null before the first publish. */
  version: number | null;
  pid: number;
}
