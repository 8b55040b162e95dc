/**
 * Helpers for driving the provider as a relying party would: openid-client for the protocol, and a small
 * cookie-keeping HTTP agent for the login and consent forms (what a browser would do, without one).
 */
import * as client from 'openid-client';
import type { TestServer } from './server.js';
import { TEST_PASSWORD } from './defaults.js';

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** Remembers cookies per name (path scoping is not needed for these flows: names are unique). */
export class CookieJar {
  private cookies = new Map<string, string>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      if (!pair) continue;
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  has(name: string): boolean {
    return this.cookies.has(name);
  }
}

export class Browser {
  readonly jar = new CookieJar();
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.jar.header();
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.jar.store(res);
    return res;
  }
  async postForm(url: string | URL, fields: Record<string, string>): Promise<Response> {
    return this.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

export function hiddenField(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!match?.[1]) throw new Error(`no ${name} field in page:\n${html.slice(0, 500)}`);
  return match[1];
}

function location(res: Response, base: string): string {
  const loc = res.headers.get('location');
  if (!loc) throw new Error(`expected a redirect, got ${res.status}`);
  return new URL(loc, base).toString();
}

/**
 * Follows an authorization request through the login (and consent) pages and returns the URL the provider
 * redirected back to (the relying party's callback with `code`, `state` and `iss`).
 */
export async function authorizeThroughForms(
  server: Pick<TestServer, 'origin'>,
  authorizationUrl: URL | string,
  credentials: { email: string; password: string },
  browser = new Browser(),
): Promise<URL> {
  let url = authorizationUrl.toString();
  for (let step = 0; step < 12; step++) {
    if (url.startsWith(REDIRECT_URI) || !url.startsWith(server.origin)) return new URL(url);
    const res = await browser.fetch(url);
    if (res.status === 303 || res.status === 302) {
      url = location(res, url);
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 300)}`);
    const csrf = hiddenField(html, 'csrf');
    const uid = new URL(url).pathname.split('/').pop() ?? '';
    const submit = html.includes('name="password"')
      ? await browser.postForm(`${server.origin}/interaction/${uid}/login`, { csrf, ...credentials })
      : await browser.postForm(`${server.origin}/interaction/${uid}/confirm`, { csrf });
    if (submit.status !== 303) throw new Error(`form answered ${submit.status}: ${(await submit.text()).slice(0, 300)}`);
    url = location(submit, url);
  }
  throw new Error('too many redirects');
}

/** An authorization code + PKCE request to REDIRECT_URI, with what the relying party keeps to finish it. */
export async function authorizationRequest(config: client.Configuration, params: Record<string, string> = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  return { url, verifier, state, nonce };
}

export interface SeededClient {
  clientId: string;
  clientSecret: string | undefined;
}

export async function seedUser(server: TestServer, email = 'alice@example.com', password = TEST_PASSWORD) {
  return server.app.keryu.services.users.createUser({ email, password, name: 'Alice', emailVerified: true }, { type: 'system' });
}

export async function seedClient(server: TestServer, overrides: Record<string, unknown> = {}): Promise<SeededClient> {
  const created = await server.app.keryu.services.clients.createClient(
    {
      client_id: `app-${Math.random().toString(36).slice(2, 8)}`,
      redirect_uris: [REDIRECT_URI],
      post_logout_redirect_uris: ['http://127.0.0.1:9/'],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid profile email offline_access',
      ...overrides,
    } as Parameters<typeof server.app.keryu.services.clients.createClient>[0],
    { type: 'system' },
  );
  return { clientId: created.client_id, clientSecret: typeof created.client_secret === 'string' ? created.client_secret : undefined };
}

/** openid-client configuration for a seeded client (plain HTTP on loopback is allowed in tests only). */
export async function discover(server: TestServer | { issuer: string }, seeded: SeededClient): Promise<client.Configuration> {
  const auth = seeded.clientSecret ? client.ClientSecretBasic(seeded.clientSecret) : client.None();
  return client.discovery(new URL(server.issuer), seeded.clientId, undefined, auth, { execute: [client.allowInsecureRequests] });
}

/** Runs the whole authorization code + PKCE flow and returns the token response. */
export async function loginWithCode(
  server: Pick<TestServer, 'origin'>,
  config: client.Configuration,
  options: { email?: string; password?: string; scope?: string; resource?: string; browser?: Browser } = {},
) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const params: Record<string, string> = {
    redirect_uri: REDIRECT_URI,
    scope: options.scope ?? 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    prompt: 'consent',
  };
  if (options.resource) params.resource = options.resource;
  const url = client.buildAuthorizationUrl(config, params);
  const callback = await authorizeThroughForms(server, url, { email: options.email ?? 'alice@example.com', password: options.password ?? TEST_PASSWORD }, options.browser);
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
  return { tokens, callback, verifier };
}

export interface OAuthFailure {
  error: string | undefined;
  description: string | undefined;
  status: number | undefined;
  /** The error response, when openid-client kept it (ResponseBodyError, WWW-Authenticate challenge). */
  response: Response | undefined;
}

/**
 * Awaits an openid-client call that must fail and returns the OAuth error it failed with. Fails (throws)
 * when the call succeeds or fails with something other than an OAuth error response.
 */
export async function oauthError(call: Promise<unknown>): Promise<OAuthFailure> {
  try {
    await call;
  } catch (err) {
    if (err instanceof client.ResponseBodyError) {
      return { error: err.error, description: err.error_description, status: err.status, response: err.response };
    }
    if (err instanceof client.WWWAuthenticateChallengeError) {
      const params = err.cause[0]?.parameters;
      return { error: params?.error, description: params?.error_description, status: err.status, response: err.response };
    }
    if (err instanceof client.AuthorizationResponseError) {
      return { error: err.error, description: err.error_description, status: undefined, response: undefined };
    }
    throw err;
  }
  throw new Error('expected the call to fail with an OAuth error, but it succeeded');
}

/**
 * Keeps every response openid-client receives for a configuration (clones, so the library still reads the
 * bodies), to assert on headers such as Cache-Control.
 */
export function recordResponses(config: client.Configuration): Array<{ url: string; response: Response }> {
  const seen: Array<{ url: string; response: Response }> = [];
  config[client.customFetch] = async (url, options) => {
    const response = await fetch(url, options as RequestInit);
    seen.push({ url, response: response.clone() });
    return response;
  };
  return seen;
}
