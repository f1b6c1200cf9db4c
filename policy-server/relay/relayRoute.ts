/**
 * `/relay/<serverId>/mcp`: Streamable HTTP to a catalog server whose credential stays on
 * this server: a shared service key (credential mode `shared-key`) or the caller's own
 * upstream token, exchanged and kept here (`relay-oauth`, relayCredential.ts). For each
 * request the caller is authenticated (revoked users and sessions are refused at once, by
 * `authenticateCaller` in front), the server must be one the caller's own effective policy
 * reaches with one of those modes, only the methods a governed client may send pass, and
 * every one with a subject is a `RelayedCall` (relayedCall.ts), decided and confirmed again
 * here as the gateway decides it, so a caller going around the gateway (any local program
 * holding the user's IdP token) does not get the service key's power unasked. Messages are parsed strictly (one JSON-RPC message, no
 * keys equal but for case, which some upstream JSON decoders merge) and the upstream gets
 * the re-serialised message it was decided on, the service key and the MCP headers, never
 * the caller's token. The answer comes back streamed, any echo of the key scrubbed, list
 * answers filtered to the caller's policy. Calls are audited centrally with the caller's
 * identity (flag `via-relay`) by `RelayedCall.complete` before the answer leaves. Upstream sessions belong to the user who opened them: any other session id is a
 * 404, and the client starts a new session.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express, { type Request, type Response, type Router } from 'express';
import { request, type Dispatcher } from 'undici';
import { compileEffectivePolicy } from '../../common/policy/effectivePolicy';
import type { CallerIdentity } from '../../common/policy/identity';
import { POLICY_DENIED, RELAYED_CLIENT_METHODS, subjectOf } from '../../common/policy/callSubject';
import { isSecureOrLoopback } from '../../common/net/loopback';
import { PolicyDecider } from '../../common/policy/policyDecider';
import { describeError, type Logger } from '../../common/log/logger';
import type { AuditStore } from '../audit/auditStore';
import { ApiError } from '../http/apiErrors';
import { callerOf } from '../http/callerAuthentication';
import type { PolicyService } from '../policies/policyService';
import type { SecretStore } from '../secrets/secretStore';
import { KeyScrubber } from './keyScrubber';
import { filterListAnswer, readBounded } from './listAnswer';
import { filterListResult, isFilteredList } from '../../common/policy/listFilter';
import { PerUserLimit } from './perUserLimit';
import { MemoryRelaySessions, type RelaySessions } from './relaySessions';
import type { ReviewQueue } from '../reviews/reviewQueue';
import { RelayedCall } from './relayedCall';
import { RelayCredential } from './relayCredential';
import { isRelayed } from '../../common/policy/policyDocument';
import type { UpstreamTokens } from '../tokenExchange/upstreamTokens';
import { REVIEW_PROOF_META_KEY } from '../../common/policy/policyServerApi';

/** Headers a client may send on to the upstream; everything else (Authorization, cookies...) stays here. */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'];
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'mcp-session-id', 'cache-control'];
const MAX_DECIDERS = 1_000;
/** Requests (and open streams) one user may have in flight through the relay at once. */
const MAX_IN_FLIGHT_PER_USER = 32;
const MESSAGE_KEYS = new Set(['jsonrpc', 'id', 'method', 'params', 'result', 'error']);
const CLIENT_NOTIFICATIONS = new Set([
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
]);

export interface RelayDeps {
  policies: PolicyService;
  /** Absent when the server runs without `--secrets-key-file`: every relay call is refused. */
  secrets: SecretStore | undefined;
  /** Per-user tokens of `relay-oauth` servers (absent without a secret store). */
  upstreamTokens?: UpstreamTokens;
  audit: AuditStore;
  maxBodyBytes: number;
  log: Logger;
  dispatcher?: Dispatcher;
  /** Session owners shared by replicas (PostgreSQL); in memory when absent. */
  sessions?: RelaySessions;
  /** The review queue: a reviewer-confirmed call passes with proof of its approved review. */
  reviews?: Pick<ReviewQueue, 'redeem'>;
}

type JsonRpcMessage = { jsonrpc: '2.0'; id?: string | number; method?: string; params?: unknown };

export function relayRoutes(deps: RelayDeps): Router {
  // Exactly `/<server>/mcp`: not `/<server>/MCP/` too (the authentication in front reads the server from this path).
  const router = express.Router({ caseSensitive: true, strict: true });
  const deciders = new Map<string, PolicyDecider>();
  // Which user opened each upstream session: memory for one server, the database for replicas.
  const sessions = deps.sessions ?? new MemoryRelaySessions();
  const inFlight = new PerUserLimit(MAX_IN_FLIGHT_PER_USER);

  const deciderFor = async (caller: CallerIdentity): Promise<PolicyDecider> => {
    const current = await deps.policies.current();
    if (!current) throw new ApiError(503, 'no_policy', 'No policy is published yet.');
    const key = `${current.version}:${createHash('sha256').update(JSON.stringify(caller)).digest('base64url')}`;
    let decider = deciders.get(key);
    if (!decider) {
      decider = new PolicyDecider(compileEffectivePolicy(current.document, current.version, caller));
      if (deciders.size >= MAX_DECIDERS) deciders.delete(deciders.keys().next().value!);
      deciders.set(key, decider);
    }
    return decider;
  };

  router.all('/:serverId/mcp', express.raw({ type: () => true, limit: deps.maxBodyBytes }), async (req: Request, res: Response) => {
    const caller = callerOf(res);
    const serverId = String(req.params.serverId);
    const decider = await deciderFor(caller);
    const entry = decider.policy.servers.find((server) => server.id === serverId);
    if (!entry || !isRelayed(entry.credential)) {
      throw new ApiError(404, 'not_found', `No server "${serverId}" that your policy lets you reach through the relay.`);
    }
    if (entry.transport.type !== 'streamable-http')
      throw new ApiError(501, 'not_relayable', `"${serverId}" is not a Streamable HTTP server; the relay serves only those.`);
    if (!isSecureOrLoopback(new URL(entry.transport.url)))
      throw new ApiError(
        501,
        'not_relayable',
        `"${serverId}" is not served over https; the relay does not send a credential in clear text.`,
      );
    const upstreamUrl = entry.transport.url;
    const credentials = new RelayCredential(deps, { id: serverId, url: upstreamUrl, credential: entry.credential }, caller);

    const sessionId = req.get('mcp-session-id');
    if (sessionId !== undefined && (await sessions.ownerOf(serverId, sessionId)) !== caller.sub) {
      throw new ApiError(404, 'not_found', 'No such session.'); // unknown, or another user's: reveal nothing
    }

    /** The call being governed: a request with a subject; other messages (lists, notifications, GET, DELETE) have none. */
    let call: RelayedCall | undefined;
    /** A list request: its answer is filtered to what the caller's policy lists. */
    let listed: { id: string | number; method: string } | undefined;
    let body: string | undefined;
    if (req.method === 'POST') {
      const message = parseMessage(req.body);
      const reviewProof = takeReviewProof(message); // never forwarded upstream
      body = JSON.stringify(message); // what was decided is exactly what is sent
      if (message.method !== undefined) {
        const allowed =
          message.method === 'initialize' ||
          RELAYED_CLIENT_METHODS.has(message.method) ||
          (message.id === undefined && CLIENT_NOTIFICATIONS.has(message.method));
        if (!allowed) throw new ApiError(400, 'method_not_relayed', `The relay does not pass "${message.method.slice(0, 100)}".`);
        if (message.id !== undefined && isFilteredList(message.method)) listed = { id: message.id, method: message.method };
        const subject = subjectOf({ method: message.method, params: message.params });
        if (subject) {
          call = new RelayedCall(deps.audit, caller, serverId, message.method, subject);
          const refusal = await call.govern(decider, reviewProof, deps.reviews);
          if (refusal !== undefined) {
            await call.complete('denied');
            if (message.id === undefined) {
              res.status(202).end();
              return;
            }
            res
              .status(200)
              .set('Cache-Control', 'no-store')
              .json({ jsonrpc: '2.0', id: message.id, error: { code: POLICY_DENIED, message: refusal } });
            return;
          }
        }
      }
    }

    const release = inFlight.take(caller.sub);
    if (!release)
      throw new ApiError(
        429,
        'too_many_requests',
        `You have ${MAX_IN_FLIGHT_PER_USER} requests or streams open through the relay; close some first.`,
        {},
        { 'Retry-After': '1' },
      );
    res.on('close', release);
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = req.get(name);
      if (value !== undefined) headers[name] = value;
    }
    const aborter = new AbortController();
    res.on('close', () => aborter.abort());
    const send = async () =>
      request(upstreamUrl, {
        method: req.method as Dispatcher.HttpMethod,
        headers: { ...headers, authorization: `Bearer ${await credentials.current()}` },
        ...(body !== undefined ? { body } : {}),
        signal: aborter.signal,
        ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
      });
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await send();
      // A per-user token the upstream no longer takes is exchanged anew, once; a service key's refusal stands.
      if (upstream.statusCode === 401 && (await credentials.refused())) {
        await upstream.body.dump();
        upstream = await send();
      }
    } catch (error) {
      if (error instanceof ApiError) {
        await call?.complete('upstream-error'); // no credential for the upstream (relayCredential.ts says why)
        throw error;
      }
      deps.log.warn('relay upstream unreachable', { server: serverId, error: credentials.scrub(describeError(error)) });
      await call?.complete('upstream-error');
      throw new ApiError(502, 'upstream_unreachable', `The relay could not reach "${serverId}".`);
    }
    const key = await credentials.current();
    const upstreamSession = upstream.headers['mcp-session-id'];
    // A new session is the caller's only when it starts here (no session id sent); an upstream cannot hand over another's.
    if (typeof upstreamSession === 'string' && (sessionId === undefined || upstreamSession === sessionId))
      await sessions.bind(serverId, upstreamSession, caller.sub);
    if (req.method === 'DELETE' && sessionId !== undefined && upstream.statusCode < 300) await sessions.forget(serverId, sessionId);
    // Durable before the answer leaves, like the gateway's own audit.
    await call?.complete(upstream.statusCode < 400 ? 'ok' : 'upstream-error');
    res.status(upstream.statusCode);
    for (const name of FORWARDED_RESPONSE_HEADERS) {
      const value = upstream.headers[name];
      if (typeof value === 'string') res.set(name, value);
    }
    if (upstream.statusCode === 401 || upstream.statusCode === 403) {
      deps.log.warn('the upstream refused the relay credential', {
        server: serverId,
        status: upstream.statusCode,
        mode: entry.credential.mode,
      });
    }
    try {
      if (listed && upstream.statusCode === 200) {
        const { id, method } = listed;
        let filtered: string;
        try {
          const text = await readBounded(upstream.body);
          filtered = filterListAnswer(text, String(upstream.headers['content-type'] ?? ''), id, (result) =>
            filterListResult(decider, serverId, method, result),
          );
        } catch (error) {
          // Deny when unsure: an answer the relay cannot filter shows nothing.
          deps.log.warn('relay could not filter a list answer', {
            server: serverId,
            error: credentials.scrub(describeError(error)),
          });
          res.status(502).json({
            jsonrpc: '2.0',
            id,
            error: { code: -32603, message: `The relay could not read the list "${serverId}" answered, so it shows nothing.` },
          });
          return;
        }
        await pipeline(Readable.from([Buffer.from(filtered)]), new KeyScrubber(key), res);
        return;
      }
      await pipeline(upstream.body, new KeyScrubber(key), res);
    } catch (error) {
      if (!aborter.signal.aborted)
        deps.log.warn('relay stream ended early', { server: serverId, error: credentials.scrub(describeError(error)) });
    }
  });
  return router;
}

/**
 * One JSON-RPC message (MCP has no batches since 2025-06-18), parsed strictly: only the
 * JSON-RPC members at the top, and nowhere two keys that are equal but for case or
 * compatibility form (`name` / `Name`, `s` / `ſ`), which some upstream JSON decoders merge:
 * the relay must decide the same message the upstream runs. Anything else is a 400.
 */
function parseMessage(body: unknown): JsonRpcMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : '');
  } catch {
    throw new ApiError(400, 'parse_error', 'The body is not JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || (parsed as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
    throw new ApiError(400, 'invalid_request', 'The body is not one JSON-RPC 2.0 message.');
  }
  if (Object.keys(parsed).some((key) => !MESSAGE_KEYS.has(key)))
    throw new ApiError(400, 'invalid_request', 'The message has members JSON-RPC does not define.');
  if (!keysAreUnambiguous(parsed, 0)) throw new ApiError(400, 'invalid_request', 'The message has keys that differ only in case or form.');
  const message = parsed as JsonRpcMessage;
  if (message.method !== undefined && typeof message.method !== 'string')
    throw new ApiError(400, 'invalid_request', 'The method is not a string.');
  return message;
}

function keysAreUnambiguous(value: unknown, depth: number): boolean {
  if (depth > 64) return false;
  if (Array.isArray(value)) return value.every((item) => keysAreUnambiguous(item, depth + 1));
  if (typeof value !== 'object' || value === null) return true;
  const seen = new Set<string>();
  for (const [key, child] of Object.entries(value)) {
    const folded = key.normalize('NFKC').toLowerCase();
    if (seen.has(folded) || key.includes('\u0000')) return false;
    seen.add(folded);
    if (!keysAreUnambiguous(child, depth + 1)) return false;
  }
  return true;
}

/** The review id a gateway put in `params._meta`, removed from the message (the upstream never sees it). */
function takeReviewProof(message: JsonRpcMessage): string | undefined {
  const params = message.params;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return undefined;
  const meta = (params as { _meta?: unknown })._meta;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta) || !(REVIEW_PROOF_META_KEY in meta)) return undefined;
  const proof = (meta as Record<string, unknown>)[REVIEW_PROOF_META_KEY];
  delete (meta as Record<string, unknown>)[REVIEW_PROOF_META_KEY];
  if (Object.keys(meta).length === 0) delete (params as { _meta?: unknown })._meta;
  return typeof proof === 'string' && /^[0-9a-f-]{36}$/.test(proof) ? proof : undefined;
}
