/**
 * Size: about 360 lines on purpose: oidc-provider takes one configuration object, and keeping every security
 * setting of it in one place, each with its reason, is what makes it reviewable.
 *
 * The oidc-provider configuration. Every default that matters for security is set here explicitly, with
 * the reason (RFC 9700 §2.1.2, §4.14.2; RFC 7636; ASVS 5.0 §10.4): refresh rotation for every client, PKCE for every client, only the
 * `code` response type, no implicit flow and no password grant, exact redirect URIs, short codes, shared
 * keys, `__Host-` cookies behind TLS.
 */
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config/index.js';
import { deriveKey } from '../lib/crypto.js';
import type { ClientQueries } from '../queries/clients.js';
import type { UserQueries } from '../queries/users.js';
import type { KeySet } from '../services/signing-keys.js';
import { pageSecurityHeaders, renderPage, type PageModel } from '../views/render.js';
import { createAdapterClass } from './adapter.js';
import { registerDeviceFormRecovery } from './device-form.js';
import { customizeJwtAccessToken, mayIntrospect, revocationDecision } from './token-endpoints.js';
import type { Db } from '../db/client.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { MfaPolicy } from '../services/mfa/policy.js';
import type { Effective, SubjectRef } from '../services/rbac/effective.js';
import { API_SCOPES, apiScopesHeldBy, FIRST_PARTY_METADATA } from '../services/api-scopes.js';
import { clientSecretAccepted, clientSecretKey } from '../services/clients.js';
import { ACCOUNT_CLIENT_ID, ACCOUNT_SCOPE } from '../services/account/relying-party.js';

export interface ProviderDeps {
  config: Config;
  db: Db;
  users: UserQueries;
  clients: ClientQueries;
  /** Effective roles and permissions, for the optional `roles`/`permissions` access token claims. */
  authorization?: { effectiveOf(subject: SubjectRef): Promise<Effective> };
  /** Whether a session authenticated with `amr` satisfies the account's MFA requirement (services/mfa/policy.ts; see mfaPolicy). */
  sessionSatisfiesMfa?: MfaPolicy['sessionSatisfies'];
  /** The time a rotated client secret's grace period is judged by (the services' clock). */
  clock?: Clock;
}

/**
 * Scopes and the claims each releases (OIDC Core §5.4). `amr` (OIDC Core §2, RFC 8176) goes with `openid`:
 * every ID token says how the user signed in (`mfa` when a second factor was used).
 */
const claims = {
  openid: ['sub', 'amr'],
  email: ['email', 'email_verified'],
  profile: ['name', 'updated_at'],
  phone: ['phone_number', 'phone_number_verified'],
};

export function cookieNames(secure: boolean) {
  // __Host- needs Path=/ (only the session cookie has it); the path-scoped interaction cookies get __Secure-.
  return secure
    ? { session: '__Host-keryu.session', interaction: '__Secure-keryu.interaction', resume: '__Secure-keryu.resume' }
    : { session: 'keryu.session', interaction: 'keryu.interaction', resume: 'keryu.resume' };
}

/** The provider's own pages (device flow, logout, its errors) carry the same headers as ours (views/render.ts). */
export function page(ctx: KoaContextWithOIDC, template: string, model: PageModel): void {
  ctx.type = 'html';
  ctx.set(pageSecurityHeaders);
  ctx.body = renderPage(template, model);
}

/**
 * The interaction policy: oidc-provider's own prompts, with one more login check. `mfa_required` asks for
 * the login prompt again when the session's `amr` does not satisfy the account: an SSO session from before a
 * factor was enrolled, or before a role started requiring MFA, signs in again (with the second factor) at
 * its next authorization, and a resumed authorization is checked like a new one. With prompt=none the
 * relying party gets `login_required`.
 */
export function mfaPolicy(satisfies: NonNullable<ProviderDeps['sessionSatisfiesMfa']>) {
  const policy = interactionPolicy.base();
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider base policy has no login prompt');
  login.checks.add(
    new interactionPolicy.Check('mfa_required', 'a second factor is required for this account', 'login_required', async (ctx) => {
      const { session } = ctx.oidc;
      // No account: the no_session check already asks for a login.
      if (!session?.accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      return (await satisfies(session.accountId, session.amr)) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}

export function buildProvider(deps: ProviderDeps, keySet: KeySet): Provider {
  const { config, users, clients } = deps;
  const ttl = config.ttl;
  const secure = config.secureCookies;
  const maxSignedTtl = Math.max(ttl.idToken, ttl.accessToken, ttl.clientCredentials);

  const isClientCredentials = (ctx: KoaContextWithOIDC) => ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials';

  /** The API scopes a service account's roles allow, or undefined when the client holds no role. */
  async function serviceAccountScopes(clientId: string): Promise<string[] | undefined> {
    if (!deps.authorization) return undefined;
    const effective = await deps.authorization.effectiveOf({ kind: 'client', id: clientId });
    return effective.roles.size ? apiScopesHeldBy(effective) : undefined;
  }

  /** The scopes `client` may obtain for the built-in API resource in this request, or undefined when none. */
  async function apiScopesFor(ctx: KoaContextWithOIDC, client: { clientId: string; metadata(): Record<string, unknown> }): Promise<string[] | undefined> {
    if (isClientCredentials(ctx)) {
      const held = await serviceAccountScopes(client.clientId);
      // Without a `scope` parameter the token carries every scope the roles allow, so `grant_type` alone works.
      if (held?.length && ctx.oidc.params && ctx.oidc.params.scope === undefined) ctx.oidc.params.scope = held.join(' ');
      return held;
    }
    return client.metadata()[FIRST_PARTY_METADATA] === true ? API_SCOPES : undefined;
  }

  const configuration: Configuration = {
    adapter: createAdapterClass({ db: deps.db, clients, tombstoneTtlSeconds: Math.max(ttl.refreshTokenAbsolute, maxSignedTtl) }),
    clients: [],
    jwks: keySet.jwks as Configuration['jwks'],
    claims,
    conformIdTokenClaims: true,
    // JWT access tokens name their grant (and session), so revoking either reaches them (token-endpoints.ts).
    formats: { customizers: { jwt: (_ctx, token, jwt) => customizeJwtAccessToken(token, jwt) } },
    // oidc-provider's default, plus: the account pages (a built-in first-party client) ask no consent, since the
    // user is managing their own account there; their grant is created on first use.
    async loadExistingGrant(ctx) {
      const client = ctx.oidc.client;
      const session = ctx.oidc.session;
      if (!client || !session?.accountId) return undefined;
      const grantId = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (client.clientId !== ACCOUNT_CLIENT_ID) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(ACCOUNT_SCOPE);
      await grant.save();
      return grant;
    },
    async findAccount(_ctx, sub) {
      const user = await users.findUserById(sub);
      // A disabled account, or one that must reset its password (reported compromised), holds no session or token.
      if (!user || user.disabled || user.passwordResetRequired) return undefined;
      return {
        accountId: user.id,
        async claims() {
          return {
            sub: user.id,
            email: user.email,
            email_verified: user.emailVerified,
            name: user.name ?? undefined,
            phone_number: user.phone ?? undefined,
            phone_number_verified: user.phone ? user.phoneVerified : undefined,
            updated_at: Math.floor(user.updatedAt.getTime() / 1000),
          };
        },
      };
    },
    /**
     * `roles` and `permissions` claims in access tokens (JWT for resource servers; introspection for opaque ones)
     * when the resource server (`authorization_claims`) or the client (metadata `authorization_claims: true`)
     * asks for them, so a relying service can authorize locally. They are a snapshot: a revocation reaches
     * them when the token expires, while the check API answers at once.
     */
    async extraTokenClaims(ctx, token) {
      const t = token as unknown as { accountId?: string; clientId?: string; resourceServer?: { audience?: string } };
      const audience = t.resourceServer?.audience;
      // RFC 9068 §2.2.1: a user's token for this service's API says how the user signed in (from the code,
      // refresh token or device code it was issued for), so the API can apply a role's `mfa_required`.
      const entities = ctx.oidc.entities as { AuthorizationCode?: { amr?: string[] }; RefreshToken?: { amr?: string[] }; DeviceCode?: { amr?: string[] } };
      const amr = audience === config.apiAudience && t.accountId ? (entities.AuthorizationCode ?? entities.RefreshToken ?? entities.DeviceCode)?.amr : undefined;
      const signIn = amr ? { amr } : undefined;
      if (!deps.authorization) return signIn;
      const clientWants = ctx.oidc.client?.metadata().authorization_claims === true;
      const serverWants = !clientWants && typeof audience === 'string' && (await clients.findResourceServer(audience))?.authorizationClaims === true;
      if (!clientWants && !serverWants) return signIn;
      const subject: SubjectRef | undefined = t.accountId ? { kind: 'user', id: t.accountId } : t.clientId ? { kind: 'client', id: t.clientId } : undefined;
      if (!subject) return signIn;
      const effective = await deps.authorization.effectiveOf(subject);
      return {
        ...signIn,
        roles: [...effective.roles.values()].map((r) => r.name).sort(),
        permissions: [...effective.permissions.keys()].sort(),
      };
    },
    cookies: {
      names: cookieNames(secure),
      long: { httpOnly: true, sameSite: 'lax', secure, signed: true },
      short: { httpOnly: true, sameSite: 'lax', secure, signed: true },
      keys: [deriveKey(config.secret, 'cookie-signing').toString('base64url')],
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      ...(deps.sessionSatisfiesMfa ? { policy: mfaPolicy(deps.sessionSatisfiesMfa) } : {}),
    },
    // RFC 9700 §2.1.2: no implicit or hybrid flows; `none` is not needed either.
    responseTypes: ['code'],
    // RFC 9700 §2.1.1 / ASVS 10.4.6: PKCE for every client; a confidential client may opt out explicitly.
    pkce: {
      required: (_ctx, client) => client.clientAuthMethod === 'none' || client.metadata().require_pkce !== false,
    },
    // RFC 9700 §4.14.2: rotate on every use, for every client.
    rotateRefreshToken: true,
    allowOmittingSingleRegisteredRedirectUri: false,
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    enabledJWA: {
      // Client secrets are stored as digests, so nothing may be keyed by them (no HS* anywhere).
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      requestObjectSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      idTokenSigningAlgValues: ['RS256', 'ES256'],
      userinfoSigningAlgValues: ['RS256', 'ES256'],
      introspectionSigningAlgValues: ['RS256', 'ES256'],
      authorizationSigningAlgValues: ['RS256', 'ES256'],
    },
    extraClientMetadata: {
      properties: ['require_pkce', 'authorization_claims', FIRST_PARTY_METADATA],
      validator(_ctx, key, value, metadata) {
        if ((key === 'authorization_claims' || key === FIRST_PARTY_METADATA) && value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata(`${key} must be a boolean`);
        }
        if (key !== 'require_pkce' || value === undefined) return;
        if (typeof value !== 'boolean') throw new errors.InvalidClientMetadata('require_pkce must be a boolean');
        if (value === false && metadata.token_endpoint_auth_method === 'none') {
          throw new errors.InvalidClientMetadata('public clients must use PKCE');
        }
      },
    },
    clientBasedCORS(ctx, origin, client) {
      // Browser-based (public) clients and userinfo calls may come cross-origin from a registered redirect origin.
      if (origin === 'null') return false;
      if (ctx.oidc.route !== 'userinfo' && client.clientAuthMethod !== 'none') return false;
      return (client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin);
    },
    features: {
      devInteractions: { enabled: false },
      introspection: {
        enabled: true,
        // The same rule for every token kind (token-endpoints.ts answers for the ones the provider does not store).
        // A token whose client no longer exists (deleted a moment ago, or with SQL) is inactive: the provider
        // would otherwise look the missing client up to answer and fail with a 500.
        allowedPolicy: async (ctx, client, token) =>
          mayIntrospect(client, token.clientId) && (token.clientId === client.clientId || (await ctx.oidc.provider.Client.find(token.clientId as string)) !== undefined),
      },
      revocation: {
        enabled: true,
        // RFC 7009 §2.1: a client revokes only its own tokens (the same rule as for JWTs in token-endpoints.ts).
        async allowedPolicy(_ctx, client, token) {
          const decision = revocationDecision(client, token.clientId);
          if (decision === 'refuse') throw new errors.UnauthorizedClient('the token was not issued to this client');
          return decision === 'revoke';
        },
      },
      clientCredentials: { enabled: true },
      // OpenID Connect Core §5.5: relying parties may ask for individual claims (the account pages ask for
      // `sid` and `auth_time`, which tie their session to the SSO session and date the last sign-in).
      claimsParameter: { enabled: true },
      userinfo: { enabled: true },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        async userCodeInputSource(ctx, form, _out, err) {
          const error = err ? (err.name === 'NoCodeError' || 'userCode' in err ? 'That code is not valid. Check it and try again.' : 'The request could not be completed. Start again on your device.') : undefined;
          page(ctx, 'device-input', { title: 'Connect a device', form, error });
        },
        async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
          page(ctx, 'device-confirm', { title: 'Confirm the device', form, clientName: client.clientName ?? client.clientId, userCode });
        },
        async successSource(ctx) {
          page(ctx, 'message', { title: 'Device connected', heading: 'Device connected', lines: ['You can return to your device.'] });
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          page(ctx, 'message', {
            title: 'Sign out',
            heading: 'Sign out?',
            lines: ['Do you want to sign out of keryu-auth?'],
            form,
            buttons: [
              { form: 'op.logoutForm', name: 'logout', value: 'yes', label: 'Yes, sign me out' },
              { form: 'op.logoutForm', label: 'No, stay signed in', secondary: true },
            ],
          });
        },
        async postLogoutSuccessSource(ctx) {
          page(ctx, 'message', { title: 'Signed out', heading: 'Signed out', lines: ['You have been signed out.'] });
        },
      },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return Array.isArray(oneOf) ? oneOf[0] : oneOf;
          // A service account asking for client credentials means this API (its roles are for nothing else).
          if (isClientCredentials(ctx) && (await serviceAccountScopes(client.clientId))) return config.apiAudience;
          return undefined;
        },
        useGrantedResource: () => true,
        async getResourceServerInfo(ctx, resourceIndicator, client) {
          // This service's own API is a built-in resource server: tokens for it are JWTs naming it, with
          // scopes named after the auth.* permissions (services/api-scopes.ts). Only clients the operator
          // allowed get it (confused deputy otherwise: any relying party could ask for its users' admin rights):
          // user tokens go to clients with `first_party: true` metadata, client-credentials tokens to
          // service accounts (clients holding roles), limited to the scopes their roles allow.
          if (resourceIndicator === config.apiAudience) {
            const scopes = await apiScopesFor(ctx, client);
            if (!scopes) throw new errors.InvalidTarget('this client may not obtain tokens for the keryu-auth API');
            return { scope: scopes.join(' '), audience: config.apiAudience, accessTokenTTL: ttl.accessToken, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
          }
          const server = await clients.findResourceServer(resourceIndicator);
          if (!server) throw new errors.InvalidTarget();
          return {
            scope: server.scope,
            audience: server.identifier,
            accessTokenTTL: server.accessTokenTtl ?? ttl.accessToken,
            accessTokenFormat: server.accessTokenFormat,
            ...(server.accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'ES256' } } } : {}),
          };
        },
      },
    },
    async renderError(ctx, out) {
      // Only the OAuth error code and its description: never a stack or internal detail.
      const lines = [out.error_description ?? 'The request could not be completed.'];
      page(ctx, 'message', { title: 'Something went wrong', heading: 'Something went wrong', lines: [...lines, `Error: ${out.error}`] });
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ttl.accessToken,
      // RFC 9700 §4.2.1 / our contract: at most 60 s.
      AuthorizationCode: ttl.authorizationCode,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ttl.clientCredentials,
      DeviceCode: ttl.deviceCode,
      Grant: ttl.refreshTokenAbsolute,
      IdToken: ttl.idToken,
      Interaction: ttl.interaction,
      RefreshToken(_ctx, token) {
        // Idle lifetime slides with each rotation, capped by the family's absolute lifetime (ASVS 10.4.8).
        const now = Math.floor(Date.now() / 1000);
        const familyStart = token.iiat ?? token.iat ?? now;
        return Math.max(1, Math.min(ttl.refreshTokenIdle, familyStart + ttl.refreshTokenAbsolute - now));
      },
      Session(_ctx, session) {
        const now = Math.floor(Date.now() / 1000);
        const loginTs = session.loginTs ?? now;
        return Math.max(1, Math.min(ttl.sessionIdle, loginTs + ttl.sessionAbsolute - now));
      },
    },
  };

  const provider = new Provider(config.issuer, configuration);
  registerDeviceFormRecovery(provider, (ctx, restartUrl) =>
    page(ctx, 'message', {
      title: 'Connect a device',
      heading: 'Start again',
      lines: ['This page expired, or your browser did not keep its cookie. Nothing was approved.'],
      link: { href: restartUrl, label: 'Enter the code from your device again' },
    }),
  );
  // Koa reads X-Forwarded-* only when Fastify was told which proxies to trust; app.ts then passes it only the
  // values Fastify derived from those proxies (Koa itself would trust any client's).
  provider.proxy = config.trustProxy !== false;

  // Client secrets are stored as keyed digests: the client service checks what was presented (the provider
  // parses the request and finds the client; the stored digest travels in its `client_secret` metadata). After
  // a rotation the replaced secret is accepted too until its grace period ends: it is read with the client's
  // record (the client cache), never carried in the provider's metadata.
  const digestKey = clientSecretKey(config);
  const now = deps.clock ?? systemClock;
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(this: { clientId: string }, actual: string) {
    // The freshest record decides (a rotation a moment ago included); a client deleted since is refused.
    const record = await clients.findClientAuthRecord(this.clientId);
    return clientSecretAccepted(digestKey, record ?? { digest: undefined }, actual, now());
  } as never;

  return provider;
}
