/**
 * The account pages sign people in as a relying party of this provider, as Keycloak's account console does:
 * authorization code with PKCE (RFC 7636) and a nonce, through the provider's own endpoints, so MFA, the
 * new-device and new-network checks, lockout and every audit event apply exactly as for any application.
 *
 * Requests to the provider (discovery, JWKS, token) travel in-process through `transport`, never over the
 * network: the provider runs in this process, and its public address may not be reachable from inside a pod.
 * The transport forwards the browser's address, so the token endpoint's rate limits see the person, not us.
 */
import * as oidc from 'openid-client';
import type { ClientInput } from '../clients.js';

export const ACCOUNT_CLIENT_ID = 'keryu-account';
export const ACCOUNT_SCOPE = 'openid profile email';

export const ACCOUNT_PATHS = {
  home: '/account/',
  login: '/account/login',
  callback: '/account/callback',
  signedOut: '/account/signed-out',
} as const;

/** One request to the provider, made in-process on behalf of the browser at `clientIp`. */
export type InProcessTransport = (url: string, init: { method: string; headers: Headers; body?: string | undefined }, clientIp: string | undefined) => Promise<Response>;

/** What the browser must bring back to the callback: held in a sealed, short-lived cookie. */
export interface PendingSignIn {
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
  maxAge?: number | undefined;
}

/** Who signed in, from the verified ID token. */
export interface AccountSignIn {
  userId: string;
  /** The provider's per-client session id (`sid`): the account session ends with that SSO session. */
  sid: string;
  /** Unix seconds of the last authentication (`auth_time`). */
  authTime: number;
  amr: string[];
}

/** The built-in client the account pages use: public (PKCE), first-party, code flow only. */
export function accountClientMetadata(issuer: string): ClientInput {
  const origin = new URL(issuer).origin;
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: 'Your account',
    token_endpoint_auth_method: 'none',
    redirect_uris: [`${origin}${ACCOUNT_PATHS.callback}`],
    post_logout_redirect_uris: [`${origin}${ACCOUNT_PATHS.signedOut}`],
    grant_types: ['authorization_code'],
    scope: ACCOUNT_SCOPE,
    require_pkce: true,
    first_party: true,
  };
}

/** The pages signed in through this client; a sign-in returns only to a path under one of them. */
const RETURN_TO_PREFIXES = ['/account/', '/admin/'] as const;

/**
 * Only same-origin paths of the pages signed in this way (the account pages and the admin console) are
 * followed after sign-in (no open redirect): a path, never `//host` or a backslash or control character a
 * browser could read as another origin.
 */
export function safeReturnTo(value: unknown): string {
  const controlOrBackslash = (v: string) => [...v].some((c) => c === '\\' || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (typeof value !== 'string' || !RETURN_TO_PREFIXES.some((prefix) => value.startsWith(prefix)) || value.length > 512 || controlOrBackslash(value)) {
    return ACCOUNT_PATHS.home;
  }
  return value;
}

export class AccountSignInFailed extends Error {}

export function createAccountRelyingParty(deps: { issuer: string; transport: InProcessTransport }) {
  const origin = new URL(deps.issuer).origin;
  const redirectUri = `${origin}${ACCOUNT_PATHS.callback}`;
  const insecure = new URL(deps.issuer).protocol === 'http:';
  // The provider's default routes below the issuer (oidc-provider's `routes`, not changed here): no discovery
  // request, and no endpoint URL derived from how a request reached us (behind a proxy that can differ).
  const serverMetadata: oidc.ServerMetadata = {
    issuer: deps.issuer,
    authorization_endpoint: `${deps.issuer}/auth`,
    token_endpoint: `${deps.issuer}/token`,
    jwks_uri: `${deps.issuer}/jwks`,
    end_session_endpoint: `${deps.issuer}/session/end`,
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
  };

  /** A configuration whose requests go in-process on behalf of this browser. */
  function configurationFor(clientIp: string | undefined): oidc.Configuration {
    const configuration = new oidc.Configuration(serverMetadata, ACCOUNT_CLIENT_ID, undefined, oidc.None());
    configuration[oidc.customFetch] = (url, options) => {
      const headers = new Headers(options.headers);
      let body: string | undefined;
      if (typeof options.body === 'string') body = options.body;
      else if (options.body instanceof URLSearchParams) {
        // What fetch() would do with URLSearchParams: the form encoding and its content type.
        body = options.body.toString();
        if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
      }
      return deps.transport(url, { method: options.method, headers, body }, clientIp);
    };
    // The requests never leave the process; http is allowed only for an http issuer (development on localhost).
    if (insecure) oidc.allowInsecureRequests(configuration);
    return configuration;
  }

  return {
    /** The authorization request to send the browser to, and what its callback must match. */
    async start(input: { returnTo: string; maxAge?: number | undefined }, clientIp: string | undefined): Promise<{ url: string; pending: PendingSignIn }> {
      const configuration = configurationFor(clientIp);
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const pending: PendingSignIn = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier, returnTo: safeReturnTo(input.returnTo), maxAge: input.maxAge };
      const parameters: Record<string, string> = {
        redirect_uri: redirectUri,
        scope: ACCOUNT_SCOPE,
        state: pending.state,
        nonce: pending.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      };
      if (input.maxAge !== undefined) {
        // A fresh authentication whatever the provider's session age (prompt=login), and proof of it (max_age
        // makes the ID token carry auth_time, which the callback checks against the same bound).
        parameters.max_age = String(input.maxAge);
        parameters.prompt = 'login';
      }
      // OpenID Connect Core §5.5: the ID token names the SSO session (sid) and the last sign-in (auth_time).
      parameters.claims = JSON.stringify({ id_token: { sid: { essential: true }, auth_time: { essential: true } } });
      return { url: oidc.buildAuthorizationUrl(configuration, parameters).href, pending };
    },

    /** Redeems the code of a callback (`query`: the callback's query string) and verifies the ID token. */
    async finish(query: string, pending: PendingSignIn, clientIp: string | undefined): Promise<AccountSignIn> {
      const configuration = configurationFor(clientIp);
      let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
      try {
        tokens = await oidc.authorizationCodeGrant(configuration, new URL(`${redirectUri}?${query}`), {
          pkceCodeVerifier: pending.codeVerifier,
          expectedState: pending.state,
          expectedNonce: pending.nonce,
          maxAge: pending.maxAge,
          idTokenExpected: true,
        });
      } catch (err) {
        throw new AccountSignInFailed(err instanceof Error ? err.message : 'sign-in failed', { cause: err });
      }
      const claims = tokens.claims();
      if (!claims || typeof claims.sid !== 'string' || typeof claims.auth_time !== 'number') throw new AccountSignInFailed('ID token without sid or auth_time');
      const amr = Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string') : [];
      return { userId: claims.sub, sid: claims.sid, authTime: claims.auth_time, amr };
    },

    /** RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2): the provider ends the SSO session and comes back. */
    logoutUrl(): string {
      const url = new URL(`${deps.issuer}/session/end`);
      url.searchParams.set('client_id', ACCOUNT_CLIENT_ID);
      url.searchParams.set('post_logout_redirect_uri', `${origin}${ACCOUNT_PATHS.signedOut}`);
      return url.href;
    },
  };
}
export type AccountRelyingParty = ReturnType<typeof createAccountRelyingParty>;
