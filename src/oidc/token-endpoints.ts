/**
 * The provider's introspection and revocation endpoints (the ones discovery names) for every token this
 * service issues, not only the ones oidc-provider stores:
 *  - JWT access tokens the provider issued to resource servers: signature, issuer and expiry checked; active
 *    while neither the token (`jti`, revoked here) nor its grant is revoked;
 *  - first-party access tokens and personal tokens (services/sessions.ts): active while their session or
 *    token is; revoking a first-party access token ends its session, revoking a personal token ends it.
 *
 * oidc-provider answers `unsupported_token_type` for a JWT, and `{active: false}` for a token it does not
 * store, only after it authenticated the client (RFC 6749 §2.3.1) and validated the request; this Koa
 * middleware (provider.use) runs around every route and takes over exactly those answers, so client
 * authentication and request validation stay the library's. Inactive answers never say why (RFC 7662 §2.2).
 * @see RFC 7662, RFC 7009, RFC 9068
 */
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { RevokedTokenQueries } from '../queries/revoked-tokens.js';
import { FIRST_PARTY_CLIENT_ID } from '../services/access-tokens.js';
import type { AuditEvent } from '../services/audit.js';
import { requestContextOfKoa, type RequestContext } from '../lib/request-context.js';

/** The claim naming the grant a provider JWT access token was issued under (so its revocation reaches the token). */
export const GRANT_ID_CLAIM = 'grant_id';

/** What the first-party auth API answers for its own tokens (services/sessions.ts). */
export interface FirstPartyTokens {
  introspect(token: string): Promise<Record<string, unknown>>;
  revokeByAccessToken(token: string, context?: RequestContext): Promise<boolean>;
  /** Revokes a personal token (`kpat_...`); false for anything else. */
  revokePersonalTokenByValue(token: string, context?: RequestContext): Promise<boolean>;
}

export interface TokenEndpointDeps {
  issuer: string;
  /** The provider's published keys (the same the JWKS endpoint serves). */
  publicJwks: { keys: Array<Record<string, unknown>> };
  revokedTokens: RevokedTokenQueries;
  firstParty: FirstPartyTokens;
  audit: (event: AuditEvent) => void;
}

interface Caller {
  clientId: string;
  clientAuthMethod?: string | undefined;
}

/**
 * Who may introspect a token: relying services (confidential clients) introspect tokens presented to them,
 * whoever they were issued to; a public client proves nothing about itself, so only its own tokens.
 */
export function mayIntrospect(caller: Caller, tokenClientId: string | undefined): boolean {
  return caller.clientAuthMethod !== 'none' || tokenClientId === caller.clientId;
}

/**
 * Who may revoke a token: only the client it was issued to (RFC 7009 §2.1). Another confidential client is
 * told so (`unauthorized_client`; it could learn as much by introspecting); a public client proves nothing,
 * so it gets the silent success of an invalid token and nothing is revoked.
 */
export function revocationDecision(caller: Caller, tokenClientId: string | undefined): 'revoke' | 'ignore' | 'refuse' {
  if (tokenClientId === caller.clientId) return 'revoke';
  return caller.clientAuthMethod === 'none' ? 'ignore' : 'refuse';
}

/** Adds the grant and session ids to a provider JWT access token (oidc-provider's `formats.customizers.jwt`). */
export function customizeJwtAccessToken(token: object, jwt: { payload: Record<string, unknown> }): void {
  const { grantId, sid } = token as { grantId?: unknown; sid?: unknown };
  if (typeof grantId === 'string') jwt.payload[GRANT_ID_CLAIM] = grantId;
  if (typeof sid === 'string') jwt.payload.sid = sid;
}

const looksLikeJwt = (token: string) => token.split('.').length === 3;

export function registerTokenEndpoints(provider: Provider, deps: TokenEndpointDeps): void {
  const keys = createLocalJWKSet(deps.publicJwks);

  /** The claims of a valid (signed by us, unexpired) access token, or undefined. */
  async function verified(token: string): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(token, keys, { issuer: deps.issuer, typ: 'at+jwt' });
      return typeof payload.client_id === 'string' && typeof payload.jti === 'string' ? payload : undefined;
    } catch {
      return undefined;
    }
  }

  const grantOf = (claims: JWTPayload) => (typeof claims[GRANT_ID_CLAIM] === 'string' ? claims[GRANT_ID_CLAIM] : undefined);

  /**
   * A provider JWT is active while it and its grant are not revoked, the grant still exists for it, and its
   * client still exists (deleting a client ends its client-credentials tokens, which have no grant).
   */
  async function providerJwtActive(claims: JWTPayload): Promise<boolean> {
    const grantId = grantOf(claims);
    if (await deps.revokedTokens.isAccessTokenRevoked({ jti: claims.jti as string, grantId })) return false;
    if (!grantId) return (await provider.Client.find(claims.client_id as string)) !== undefined;
    const grant = await provider.Grant.find(grantId, { ignoreExpiration: true });
    // `sub` may be pairwise, so the grant is matched by its client only (its id comes from our own signature).
    return Boolean(grant && !grant.isExpired && grant.clientId === claims.client_id);
  }

  async function introspect(caller: Caller, token: string): Promise<Record<string, unknown>> {
    const inactive = { active: false };
    if (!looksLikeJwt(token)) return mayIntrospect(caller, FIRST_PARTY_CLIENT_ID) ? deps.firstParty.introspect(token) : inactive;
    const claims = await verified(token);
    if (!claims || !mayIntrospect(caller, claims.client_id as string)) return inactive;
    if (claims.client_id === FIRST_PARTY_CLIENT_ID) return deps.firstParty.introspect(token);
    if (!(await providerJwtActive(claims))) return inactive;
    const { [GRANT_ID_CLAIM]: _grant, ...released } = claims;
    return { ...released, active: true, token_type: 'Bearer' };
  }


  async function revoke(ctx: KoaContextWithOIDC, caller: Caller, token: string): Promise<'done' | 'refused'> {
    const claims = await verified(token);
    if (!claims) return 'done';
    const context = requestContextOfKoa(ctx);
    if (claims.client_id === FIRST_PARTY_CLIENT_ID) {
      // Whoever holds a first-party access token may already end its session (logout), so any client may.
      await deps.firstParty.revokeByAccessToken(token, context);
      return 'done';
    }
    const decision = revocationDecision(caller, claims.client_id as string);
    if (decision === 'ignore') return 'done';
    if (decision === 'refuse') return 'refused';
    await deps.revokedTokens.insertRevokedToken({ jti: claims.jti as string, clientId: caller.clientId, expiresAt: new Date((claims.exp ?? 0) * 1000) });
    deps.audit({
      type: 'oidc.token_revoked',
      outcome: 'success',
      actor: { type: 'client', id: caller.clientId },
      clientId: caller.clientId,
      // The caller is the token's client; a pairwise `sub` is no user id.
      subject: typeof claims.sub === 'string' && claims.sub !== claims.client_id && ctx.oidc.client?.subjectType !== 'pairwise' ? { type: 'user', id: claims.sub } : undefined,
      context,
      details: { token_type: 'jwt_access_token', jti: claims.jti },
    });
    return 'done';
  }

  provider.use(async (koaCtx, next) => {
    await next();
    const ctx = koaCtx as KoaContextWithOIDC;
    const route = ctx.oidc?.route;
    if (route !== 'introspection' && route !== 'revocation') return;
    const client = ctx.oidc.client;
    const token = ctx.oidc.params?.token;
    // Only answers given after the client authenticated and the request was valid are taken over.
    if (!client || typeof token !== 'string') return;
    const body = ctx.body as { error?: string; active?: boolean } | undefined;
    const structured = ctx.status === 400 && body?.error === 'unsupported_token_type';
    const caller = { clientId: client.clientId, clientAuthMethod: client.clientAuthMethod };

    if (route === 'introspection' && (structured || (ctx.status === 200 && body?.active === false))) {
      ctx.status = 200;
      ctx.body = await introspect(caller, token);
      return;
    }
    if (route === 'revocation' && structured) {
      if ((await revoke(ctx, caller, token)) === 'refused') {
        ctx.status = 400;
        ctx.body = { error: 'unauthorized_client', error_description: 'the token was not issued to this client' };
        return;
      }
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    // A token the provider does not store answers 200 (RFC 7009 §2.2); a personal token is ours to end. Like a
    // first-party access token, whoever holds it could delete it through the API, so any authenticated client may.
    if (route === 'revocation' && ctx.status === 200 && !looksLikeJwt(token)) {
      await deps.firstParty.revokePersonalTokenByValue(token, requestContextOfKoa(ctx));
    }
  });
}
