/**
 * Obtaining authorization codes and refresh tokens through the real protocol path, as a browser and a
 * relying party would: authorization request, login and consent (keryu-auth's forms; the bare provider's
 * automatic interaction), redirect back with a code, code exchange at the token endpoint.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Browser, hiddenField, REDIRECT_URI } from '../../test/helpers/oidc.js';

export { REDIRECT_URI };

export interface Target {
  /** 'keryu' or 'bare' */
  name: string;
  origin: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  endpoints: { discovery: string; jwks: string; authorization: string; token: string; introspection: string };
  /** Login for the form-driven flow (keryu-auth). */
  credentials?: { email: string; password: string };
}

export async function discoverTarget(base: Omit<Target, 'endpoints'>): Promise<Target> {
  const discovery = `${base.issuer}/.well-known/openid-configuration`;
  const res = await fetch(discovery);
  if (!res.ok) throw new Error(`${base.name}: discovery answered ${res.status}`);
  const meta = (await res.json()) as Record<string, unknown>;
  const url = (key: string) => {
    const value = meta[key];
    if (typeof value !== 'string') throw new Error(`${base.name}: discovery has no ${key}`);
    return value;
  };
  return {
    ...base,
    endpoints: {
      discovery,
      jwks: url('jwks_uri'),
      authorization: url('authorization_endpoint'),
      token: url('token_endpoint'),
      introspection: url('introspection_endpoint'),
    },
  };
}

/** client_secret_basic (RFC 6749 §2.3.1: form-encode both parts before base64). */
export function basicAuth(target: Target): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(target.clientId)}:${encodeURIComponent(target.clientSecret)}`).toString('base64')}`;
}

/** One PKCE pair for the whole run: the server does the same S256 check whatever the verifier is. */
export const pkce = (() => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
})();

export const CODE_SCOPE = 'openid offline_access';

function authorizationUrl(target: Target): string {
  const url = new URL(target.endpoints.authorization);
  url.search = new URLSearchParams({
    client_id: target.clientId,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: CODE_SCOPE,
    // offline_access is only granted with prompt=consent (OIDC Core §11), so every code goes through consent.
    prompt: 'consent',
    code_challenge: pkce.challenge,
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('base64url'),
  }).toString();
  return url.toString();
}

/**
 * Runs one authorization request to its redirect back and returns the code. The browser keeps its session
 * cookie between calls, so only its first call shows keryu-auth's login form; later ones show consent only.
 */
export async function obtainCode(target: Target, browser: Browser): Promise<string> {
  let url = authorizationUrl(target);
  for (let step = 0; step < 12; step++) {
    if (url.startsWith(REDIRECT_URI)) {
      const callback = new URL(url);
      const code = callback.searchParams.get('code');
      if (!code) throw new Error(`${target.name}: authorization failed: ${callback.searchParams.get('error')} ${callback.searchParams.get('error_description') ?? ''}`);
      return code;
    }
    const res = await browser.fetch(url);
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = res.headers.get('location');
      if (!location) throw new Error(`${target.name}: redirect without location at ${url}`);
      url = new URL(location, url).toString();
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`${target.name}: unexpected ${res.status} at ${url}: ${html.slice(0, 300)}`);
    const csrf = hiddenField(html, 'csrf');
    const uid = new URL(url).pathname.split('/').pop() ?? '';
    let submit: Response;
    if (html.includes('name="password"')) {
      if (!target.credentials) throw new Error(`${target.name}: login form but no credentials`);
      submit = await browser.postForm(`${target.origin}/interaction/${uid}/login`, { csrf, ...target.credentials });
    } else {
      submit = await browser.postForm(`${target.origin}/interaction/${uid}/confirm`, { csrf });
    }
    await submit.arrayBuffer();
    const location = submit.headers.get('location');
    if (submit.status !== 303 || !location) throw new Error(`${target.name}: form answered ${submit.status}`);
    url = new URL(location, url).toString();
  }
  throw new Error(`${target.name}: too many redirects`);
}

export function codeExchangeBody(code: string): string {
  return new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: pkce.verifier }).toString();
}

export function refreshBody(refreshToken: string): string {
  return new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString();
}

export async function tokenRequest(target: Target, body: string): Promise<Record<string, unknown>> {
  const res = await fetch(target.endpoints.token, {
    method: 'POST',
    headers: { authorization: basicAuth(target), 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${target.name}: token endpoint answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/** Exchanges a code and returns the refresh token it carries. */
export async function obtainRefreshToken(target: Target, browser: Browser): Promise<string> {
  const tokens = await tokenRequest(target, codeExchangeBody(await obtainCode(target, browser)));
  if (typeof tokens.refresh_token !== 'string') throw new Error(`${target.name}: code exchange issued no refresh token`);
  return tokens.refresh_token;
}

export interface Acquired<T> {
  items: T[];
  seconds: number;
  /** True when the deadline, not the count, ended the acquisition. */
  timedOut: boolean;
}

/**
 * Calls `once(browser)` from `concurrency` workers, each with its own cookie jar, until `count` items are
 * in or `deadline` (epoch ms) passes. Items come back in the order they were obtained.
 */
export async function acquire<T>(options: {
  count: number;
  concurrency: number;
  deadline: number;
  once: (browser: Browser) => Promise<T>;
  browsers: Browser[];
}): Promise<Acquired<T>> {
  const started = performance.now();
  const items: T[] = [];
  let claimed = 0;
  let timedOut = false;
  let failed = false;
  while (options.browsers.length < options.concurrency) options.browsers.push(new Browser());
  const worker = async (browser: Browser) => {
    while (claimed < options.count && !failed) {
      if (Date.now() >= options.deadline) {
        timedOut = true;
        return;
      }
      claimed++;
      try {
        items.push(await options.once(browser));
      } catch (err) {
        // One failure ends the acquisition: the other workers stop at their next turn.
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(options.browsers.slice(0, options.concurrency).map(worker));
  return { items, seconds: (performance.now() - started) / 1000, timedOut };
}
