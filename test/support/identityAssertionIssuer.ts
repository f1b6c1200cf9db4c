/**
 * The org IdP's half of enterprise-managed authorization, added to the local IdP (TEST
 * FIXTURE on the real oidc-provider, as Okta's Cross App Access adds it to Okta): RFC 8693
 * token exchange of an ID token this IdP issued to the calling client for an Identity
 * Assertion JWT Authorization Grant (ID-JAG) for another authorization server. The IdP
 * knows which client at that server the caller is (`trust`), as an admin would set up.
 */
import { randomUUID } from 'node:crypto';
import { importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { ID_JAG_JWT_TYPE, ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../common/oauth/identityAssertion';
import { accountClaims } from './localIdp';
import { OAuthErrors, type Provider, type ProviderContext } from './oidcProviderApi';

const ID_JAG_TTL_SECONDS = 300;

/** Which client, at which authorization server, a client of this IdP is. */
export interface AssertionClients {
  trust(authorizationServer: string, idpClientId: string, clientIdThere: string): void;
  /** From now on the assertions carry only these of the person's claims (email, groups), as an IdP set up to send fewer would. */
  personClaims(names: ReadonlyArray<'email' | 'groups'>): void;
}

export function issueIdentityAssertions(
  provider: Provider,
  issuer: string,
  signingKey: JWK & { kid: string; alg: string },
): AssertionClients {
  const clientIds = new Map<string, string>();
  let sent: ReadonlyArray<'email' | 'groups'> = ['email', 'groups'];
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx: ProviderContext) => {
      const { params, client } = ctx.oidc;
      if (params.subject_token_type !== ID_TOKEN_TYPE || params.requested_token_type !== ID_JAG_TOKEN_TYPE) {
        throw new OAuthErrors.InvalidRequest('only ID tokens are exchanged, and only for ID-JAGs');
      }
      const audience = String(params.audience ?? '');
      const clientIdThere = clientIds.get(`${audience} ${client.clientId}`);
      if (!clientIdThere) throw new OAuthErrors.InvalidTarget('this client is not set up for that authorization server');
      const { kty, n, e } = signingKey;
      let subject: string;
      try {
        const { payload } = await jwtVerify(String(params.subject_token ?? ''), await importJWK({ kty, n, e }, signingKey.alg), {
          issuer,
          audience: client.clientId,
        });
        subject = String(payload.sub);
      } catch {
        throw new OAuthErrors.InvalidGrant('subject_token is not an ID token this IdP issued to this client');
      }
      const person = accountClaims(subject);
      const assertion = await new SignJWT({
        client_id: clientIdThere,
        ...Object.fromEntries(sent.map((name) => [name, person[name]])),
        ...(typeof params.resource === 'string' ? { resource: params.resource } : {}),
        ...(typeof params.scope === 'string' ? { scope: params.scope } : {}),
      })
        .setProtectedHeader({ alg: signingKey.alg, kid: signingKey.kid, typ: ID_JAG_JWT_TYPE })
        .setIssuer(issuer)
        .setSubject(subject)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(`${ID_JAG_TTL_SECONDS}s`)
        .setJti(randomUUID())
        .sign(await importJWK(signingKey, signingKey.alg));
      ctx.body = { access_token: assertion, issued_token_type: ID_JAG_TOKEN_TYPE, token_type: 'N_A', expires_in: ID_JAG_TTL_SECONDS };
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope'],
  );
  return {
    trust: (authorizationServer, idpClientId, clientIdThere) => clientIds.set(`${authorizationServer} ${idpClientId}`, clientIdThere),
    personClaims: (names) => {
      sent = names;
    },
  };
}
