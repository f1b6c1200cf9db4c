/**
 * The policy server's HTTP API as the gateway and the `gatehouse policy` CLI see it: paths,
 * response bodies and push events. Every error body is `ApiErrorBody`.
 */
import type { AuditDecision, AuditEvent } from '../audit/auditEvent';
import type { AuditExportFormat } from '../audit/auditExportFormat';

// The export formats are part of this API; they are defined with the code that writes them.
export { AUDIT_CSV_COLUMNS, AUDIT_EXPORT_FORMATS, type AuditExportFormat } from '../audit/auditExportFormat';

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
  /**
   * When present, not the user's access but their stored credential for this `user-oauth`
   * server: gateways delete tokens obtained before `revokedAt`; the user may sign in again.
   */
  serverId?: string;
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
  audit: '/v1/audit',
  auditExport: '/v1/audit/export',
  reviews: '/v1/reviews',
  /** `/relay/<serverId>/mcp`: Streamable HTTP to a shared-key server, the key added here. */
  relay: '/relay',
  /** The MCP authorization server (its issuer: the policy server's URL and this path). */
  authorization: '/oauth',
} as const;

/** The gateway's client id at the policy server's authorization server, which registers it itself (a public client). */
export const GATEWAY_CLIENT_ID = 'gatehouse-gateway';

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

/** `GET /v1/revocations`, `POST /v1/revocations` body `{sub, sessionId? | serverId?, reason?}` -> 201 `{revocation}`. */
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
  | { event: 'revoked'; data: { sub: string; sessionId?: string } }
  /** The user's stored credential for one server was revoked: fetch the effective policy again (it lists the revocation). */
  | { event: 'credential-revoked'; data: { sub: string; serverId: string } };

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

// ---------------------------------------------------------------------------------------
// Central audit (DESIGN.md flow 6): gateways ship their spooled events; admins query and export.

/** Most events in one `POST /v1/audit` batch. */
export const AUDIT_BATCH_MAX_EVENTS = 500;
/** Largest `POST /v1/audit` body, in bytes (1 MiB); a gateway packs its batches below it. */
export const AUDIT_BATCH_MAX_BYTES = 1024 * 1024;
/** `GET /v1/audit` page size when `limit` is not given, and the largest one allowed. */
export const AUDIT_QUERY_DEFAULT_LIMIT = 100;
export const AUDIT_QUERY_MAX_LIMIT = 10_000;

/**
 * `POST /v1/audit` (any authenticated user): `{events}`, 1 to `AUDIT_BATCH_MAX_EVENTS`
 * events, each an `AuditEvent` whose `user` is the caller's own `sub` (otherwise the whole
 * batch is refused with 403). Idempotent by event id.
 */
export interface AuditBatchRequest {
  events: AuditEvent[];
}

/**
 * 200 once every event of the batch is durably stored: `accepted` were new, `duplicates`
 * were already stored (sent before, or repeated in the batch) and were left as they are.
 * `accepted + duplicates` is the batch's length.
 */
export interface AuditBatchResponse {
  accepted: number;
  duplicates: number;
}

/**
 * Filters of `GET /v1/audit` and `GET /v1/audit/export` (query parameters, all optional,
 * combined with AND). `user`, `server`, `tool` and `decision` match exactly; `from` (inclusive)
 * and `to` (exclusive) are ISO 8601 times compared with the event's `time`.
 */
export interface AuditQueryFilters {
  user?: string;
  server?: string;
  tool?: string;
  decision?: AuditDecision;
  from?: string;
  to?: string;
}

/** `GET /v1/audit` (admin) query: the filters plus `limit` (default 100, at most 10,000) and `cursor`. */
export interface AuditQueryParams extends AuditQueryFilters {
  limit?: number;
  /** `nextCursor` of the previous page; opaque. */
  cursor?: string;
}

/**
 * `GET /v1/audit` answer: matching events oldest first (by `time`, then `id`). `nextCursor`
 * is present when more may follow: ask again with `cursor=<nextCursor>` and the same filters.
 */
export interface AuditQueryResponse {
  events: AuditEvent[];
  nextCursor?: string;
}

/**
 * `GET /v1/audit/export?format=jsonl|csv&<filters>` (admin) streams every matching event,
 * oldest first, in one of the formats of common/audit/auditExportFormat.ts.
 */
export const AUDIT_EXPORT_CONTENT_TYPES: Record<AuditExportFormat, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
};

// ---------------------------------------------------------------------------------------
// Second-person review (DESIGN.md flow 2, confirm obligations naming a reviewer group).

/** Longest `wait` (seconds) a `GET /v1/reviews/<id>` long-poll may ask for. */
export const REVIEW_MAX_WAIT_SECONDS = 30;
/** Largest `arguments` object a review request may carry, as JSON bytes. */
export const REVIEW_MAX_ARGUMENT_BYTES = 64 * 1024;

export const REVIEW_STATES = ['pending', 'approved', 'denied', 'expired'] as const;
export type ReviewState = (typeof REVIEW_STATES)[number];

export interface ReviewParty {
  sub: string;
  /** Only an email the IdP verified. */
  email?: string;
}

/**
 * A call waiting for (or decided by) a second person. The policy server decides itself
 * whether the call needs review and by whom, from the requester's effective policy; the
 * gateway only says what the call is. Held in the server's memory: a restart loses pending
 * reviews, and the waiting calls are denied.
 */
export interface ReviewRecord {
  id: string;
  state: ReviewState;
  requester: ReviewParty;
  server: string;
  method: string;
  /** The name policy rules match: a tool name, `resource:<uri>` or `prompt:<name>`. */
  tool: string;
  /** The call's arguments as the gateway sent them, secrets already redacted. */
  arguments: Record<string, unknown>;
  /** The confirm rule that asked for review, and its reason. */
  rule: string;
  reason?: string;
  /** Group whose members may decide. */
  reviewers: string;
  requestedAt: string;
  /** After this the review is `expired` and the call is denied. */
  expiresAt: string;
  decidedAt?: string;
  reviewer?: ReviewParty;
  /** The reviewer's words to the requester, if any. */
  note?: string;
}

/**
 * Where a gateway puts an approved review's id on the call it sends through the relay
 * (`params._meta`), so the relay can let a reviewer-confirmed call pass: once, for exactly
 * the call that was approved (server, method, name, and the digest of its arguments).
 */
export const REVIEW_PROOF_META_KEY = 'io.gatehouse/review';

/** `POST /v1/reviews` (the requester's gateway) -> 201 `{review}`; 409 `not_reviewable` when policy does not ask for review. */
export interface ReviewRequestBody {
  server: string;
  method: string;
  tool: string;
  arguments: Record<string, unknown>;
}

/** `GET /v1/reviews`: pending reviews the caller may decide (never their own). */
export interface ReviewListResponse {
  reviews: ReviewRecord[];
}

/** `POST /v1/reviews/<id>/decision` -> 200 `{review}`; 403 `self_review` or `forbidden`; 409 `already_decided`. */
export interface ReviewDecisionBody {
  decision: 'approve' | 'deny';
  note?: string;
}

/** `POST /v1/reviews`, `GET /v1/reviews/<id>[?wait=<seconds>]` and the decision route answer this. */
export interface ReviewResponse {
  review: ReviewRecord;
}
