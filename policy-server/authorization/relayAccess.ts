/**
 * The relay as an OAuth protected resource (RFC 9728) of the policy server's authorization
 * server: its metadata document per relay server, the challenge that points clients to it,
 * and the check of the access tokens the authorization server issued: signed by its key,
 * for exactly this relay server (`aud`), unexpired, and when bound to a key (`cnf.jkt`)
 * presented with a fresh DPoP proof of that key (with `--relay-requires-dpop`, only such
 * tokens: no IdP token, no unbound token). The identity the relay decides on is the
 * one the org's IdP vouched for at sign-in (`idp`), as for the IdP's own tokens.
 */
import express, { type Request, type Router } from 'express';
import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { CallerIdentity } from '../../common/policy/identity';
import { POLICY_SERVER_PATHS } from '../../common/policy/policyServerApi';
import { AuthenticationError, authorizationCredentials } from '../auth/bearerAuthenticator';
import { ACCESS_TOKEN_ALGORITHM, type AuthorizationKeys } from './authorizationKeys';
import { RELAY_SCOPE, type AuthorizationServer } from './authorizationServer';
import { DPOP_ALGORITHMS, DpopProofError, verifyDpopProof } from './dpopProof';

const PRM_PATH = '/.well-known/oauth-protected-resource';
const CLOCK_TOLERANCE_SECONDS = 30;

export class RelayAccess {
  private readonly keySet;

  constructor(
    private readonly server: AuthorizationServer,
    keys: AuthorizationKeys,
    private readonly publicUrl: string,
    /** `--relay-requires-dpop`: the relay takes only key-bound (DPoP) tokens of this authorization server, no IdP token. */
    readonly keyBoundOnly = false,
  ) {
    this.keySet = createLocalJWKSet({ keys: [keys.publicJwk] });
  }

  /** `/.well-known/oauth-protected-resource/relay/<server>/mcp`: the same document for any well-formed id, so it reveals no catalog. */
  routes(): Router {
    const router = express.Router();
    router.get(`${PRM_PATH}${POLICY_SERVER_PATHS.relay}/:serverId/mcp`, (req, res) => {
      const resource = this.server.relayResource(String(req.params.serverId));
      if (this.server.serverIdOf(resource) === undefined) {
        res.status(404).set('Cache-Control', 'no-store').json({ error: 'not_found', message: 'No such protected resource.' });
        return;
      }
      res.set({ 'Cache-Control': 'max-age=300', 'Access-Control-Allow-Origin': '*' }).json({
        resource,
        authorization_servers: [this.server.issuer],
        scopes_supported: [RELAY_SCOPE],
        bearer_methods_supported: ['header'],
        dpop_signing_alg_values_supported: DPOP_ALGORITHMS,
        resource_name: `Gatehouse relay: ${String(req.params.serverId)}`,
      });
    });
    return router;
  }

  /** Whether this request carries one of our tokens (DPoP, or a JWT whose issuer is our authorization server); only looks, never trusts. */
  carriesOurToken(req: Request): boolean {
    const header = req.get('authorization')?.trim() ?? '';
    if (/^dpop /i.test(header)) return true;
    if (!/^bearer /i.test(header)) return false;
    try {
      return decodeJwt(header.slice('bearer '.length).trim()).iss === this.server.issuer;
    } catch {
      return false;
    }
  }

  /** The caller behind one of our access tokens for this relay server, or AuthenticationError. */
  async authenticate(req: Request, serverId: string): Promise<CallerIdentity> {
    const { scheme, token } = authorizationCredentials(req.get('authorization'), ['Bearer', 'DPoP']);
    if (this.keyBoundOnly && scheme !== 'dpop') {
      throw new AuthenticationError(
        `This relay takes only tokens bound to a key (DPoP) from ${this.server.issuer}; a Bearer token is refused.`,
        'invalid_token',
        'only DPoP-bound tokens of this relay are accepted',
        'DPoP',
      );
    }
    const resource = this.server.relayResource(serverId);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keySet, {
        issuer: this.server.issuer,
        audience: resource,
        typ: 'at+jwt',
        algorithms: [ACCESS_TOKEN_ALGORITHM],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['sub', 'exp', 'client_id'],
      }));
    } catch (error) {
      throw AuthenticationError.invalidToken(refusalOf(error));
    }
    const boundTo = (payload.cnf as { jkt?: unknown } | undefined)?.jkt;
    if (typeof boundTo === 'string') {
      if (scheme !== 'dpop')
        throw AuthenticationError.invalidToken('this token is bound to a key: send it with the DPoP scheme and a proof');
      let thumbprint: string;
      try {
        thumbprint = await verifyDpopProof(req.get('dpop'), { method: req.method, url: resource, accessToken: token }, this.server.state);
      } catch (error) {
        if (error instanceof DpopProofError)
          throw new AuthenticationError(`DPoP proof refused: ${error.message}.`, 'invalid_dpop_proof', error.message, 'DPoP');
        throw error;
      }
      if (thumbprint !== boundTo)
        throw new AuthenticationError(
          'DPoP proof refused: signed by another key.',
          'invalid_dpop_proof',
          'the proof is signed by another key than the token is bound to',
          'DPoP',
        );
    } else if (scheme === 'dpop') {
      throw AuthenticationError.invalidToken('this token is not bound to a key: send it as a Bearer token');
    }
    const idp = payload.idp as { iss?: unknown; claims?: Record<string, unknown> } | undefined;
    const claims = idp?.claims;
    if (typeof idp?.iss !== 'string' || !claims || claims.sub !== payload.sub) {
      throw AuthenticationError.invalidToken('the token names no signed-in person; sign in again');
    }
    const identity: CallerIdentity = { sub: payload.sub!, issuer: idp.iss, claims: { ...claims } };
    if (typeof claims.email === 'string') identity.email = claims.email;
    if (typeof claims.preferred_username === 'string') identity.username = claims.preferred_username;
    return identity;
  }

  /** The refusal with the RFC 9728 pointer to this relay server's metadata, so a client can find where to sign in. */
  challenge(refusal: AuthenticationError, serverId: string): AuthenticationError {
    const resourcePath = new URL(this.server.relayResource(serverId)).pathname;
    return refusal.withParameters({ resource_metadata: `${this.publicUrl}${PRM_PATH}${resourcePath}`, scope: RELAY_SCOPE });
  }
}

function refusalOf(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return 'token is for another resource';
    if (error.claim === 'iss') return 'token was not issued by this authorization server';
    return `token ${error.claim} claim is not valid`;
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed || error instanceof joseErrors.JWKSNoMatchingKey)
    return 'token signature is not valid';
  return 'token is not a well-formed access token of this authorization server';
}
