/**
 * The names enterprise-managed authorization (SEP-990, the Identity Assertion JWT
 * Authorization Grant draft) and RFC 8693 token exchange use on the wire, for the gateway
 * that asks for and redeems ID-JAGs, the policy server that redeems them and exchanges its
 * subject tokens (`relay-oauth`), and the tests' authorization servers.
 */
/** RFC 8693: the client exchanges the person's ID token at the IdP. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 7523: the client redeems the ID-JAG at the resource's authorization server. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
/** RFC 8693 §3: a JWT subject token (the policy server's, credential mode `relay-oauth`) and the access token asked for. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const ID_JAG_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';
/** The JWT `typ` header of an ID-JAG. */
export const ID_JAG_JWT_TYPE = 'oauth-id-jag+jwt';
