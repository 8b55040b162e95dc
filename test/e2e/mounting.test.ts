/**
 * Where the provider lives: mounted at the issuer's path without swallowing the service's other routes,
 * and behind a TLS-terminating proxy issuing URLs with the public scheme and host and __Host- cookies.
 */
import t from 'tap';
import { seedClient } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';

t.test('mounted at the issuer path; other routes stay reachable', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const discovery = await fetch(`${server.issuer}/.well-known/openid-configuration`);
  t.equal(discovery.status, 200);
  const doc = (await discovery.json()) as Record<string, unknown>;
  t.equal(doc.issuer, server.issuer);
  t.same(doc.response_types_supported, ['code'], 'only the code response type (no implicit or hybrid)');
  t.same(doc.code_challenge_methods_supported, ['S256'], 'plain PKCE is not offered');
  t.notOk((doc.grant_types_supported as string[]).includes('password'), 'no password grant');
  t.ok(doc.introspection_endpoint, 'introspection enabled');
  t.ok(doc.revocation_endpoint, 'revocation enabled');
  t.equal(doc.authorization_response_iss_parameter_supported, true);

  t.equal((await fetch(`${server.origin}/healthz`)).status, 200, 'health outside the provider');
  const api = await fetch(`${server.origin}/api/unknown`);
  t.equal(api.status, 404);
  t.same(await api.json(), { error: 'not_found', message: 'no route for GET /api/unknown' }, 'our JSON 404, not the provider’s');
  t.equal((await fetch(`${server.origin}/.well-known/openid-configuration`)).status, 404, 'nothing at the root');
});

t.test('an issuer at the root still leaves other routes alone', async (t) => {
  const server = await startServer({ env: { ISSUER: 'http://127.0.0.1' } });
  t.teardown(() => server.close());
  const origin = server.origin;
  t.equal(server.config.issuerPath, '');
  const res = await fetch(`${origin}/.well-known/openid-configuration`);
  t.equal(res.status, 200);
  t.equal((await fetch(`${origin}/healthz`)).status, 200);
  t.equal((await fetch(`${origin}/api/nothing`)).status, 404);
});

t.test('behind a TLS-terminating proxy', async (t) => {
  const server = await startServer({ env: { ISSUER: 'https://id.example.com/oidc', TRUST_PROXY: '127.0.0.1' } });
  t.teardown(() => server.close());
  const res = await fetch(`${server.origin}/oidc/.well-known/openid-configuration`, {
    headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.com', host: 'id.example.com' },
  });
  t.equal(res.status, 200);
  const doc = (await res.json()) as Record<string, string>;
  t.equal(doc.issuer, 'https://id.example.com/oidc');
  t.equal(doc.token_endpoint, 'https://id.example.com/oidc/token', 'endpoints use the public scheme and host');
  t.equal(doc.jwks_uri, 'https://id.example.com/oidc/jwks');

  const seeded = await seedClient(server, { redirect_uris: ['https://app.example.com/cb'] });
  const auth = new URL(`${server.origin}/oidc/auth`);
  auth.search = new URLSearchParams({
    client_id: seeded.clientId,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: 'https://app.example.com/cb',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  }).toString();
  const started = await fetch(auth, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https', host: 'id.example.com' } });
  t.equal(started.status, 303);
  const cookies = started.headers.getSetCookie();
  t.ok(cookies.some((c) => c.startsWith('__Secure-keryu.interaction=') && /; secure/i.test(c)), 'interaction cookie is __Secure- and Secure');
  t.ok(cookies.every((c) => /; secure/i.test(c) && /; httponly/i.test(c)), 'every cookie is Secure and HttpOnly');
  const location = started.headers.get('location') ?? '';
  t.match(location, /^\/interaction\/[\w-]+$/, 'relative redirect to the interaction: stays on the public host');
});

t.test('the session cookie name is __Host- behind TLS', async (t) => {
  const { cookieNames } = await import('../../src/oidc/provider.js');
  t.equal(cookieNames(true).session, '__Host-keryu.session');
  t.equal(cookieNames(false).session, 'keryu.session');
});

t.test('the OpenAPI document describes the JSON APIs only', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const res = await fetch(`${server.origin}/docs/json`);
  t.equal(res.status, 200);
  const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
  t.match(doc.openapi, /^3\.1/);
  const paths = Object.keys(doc.paths);
  t.ok(paths.includes('/api/auth/login/'), 'the auth API is documented');
  t.ok(paths.includes('/api/auth/roles/'), 'the authorization API is documented');
  t.same(paths.filter((p) => !p.startsWith('/api/')), [], 'no pages, health or provider routes');
});
