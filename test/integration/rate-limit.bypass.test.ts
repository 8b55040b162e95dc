/**
 * Rate limits and the brute-force IP counter cannot be skipped by spelling a path differently or by
 * rotating addresses inside one IPv6 /64: limits follow the route Fastify matched, the provider's paths are
 * compared in one canonical spelling, and an IPv6 client counts by its /64.
 */
import { randomInt } from 'node:crypto';
import t from 'tap';
import { api, NO_RATE_LIMITS } from '../helpers/auth.js';
import { seedClient, type SeededClient } from '../helpers/oidc.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** Fresh addresses per run, so counters left by an earlier run (Redis, PostgreSQL) do not interfere. */
const freshIpv4 = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
const hex = () => randomInt(1, 0xffff).toString(16);
/** A random /64 and a function giving its n-th address. */
const fresh64 = () => {
  const prefix = `2001:db8:${hex()}:${hex()}`;
  return (n: number) => `${prefix}:${hex()}:${hex()}:${hex()}:${n.toString(16)}`;
};

const basic = (c: SeededClient, id = c.clientId) => `Basic ${Buffer.from(`${id}:${c.clientSecret}`).toString('base64')}`;
const token = (server: TestServer, path: string, c: SeededClient, ip: string, id?: string) =>
  fetch(`${server.origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(c, id), 'x-forwarded-for': ip },
    body: 'grant_type=client_credentials',
  });
const machineClient = (server: TestServer) => seedClient(server, { grant_types: ['client_credentials'], scope: 'openid', redirect_uris: [], response_types: [] });

t.test('auth API: percent-encoded paths reach the handler and count against the same limit', async (t) => {
  const server = await startServer({ env: { RATE_LIMIT_AUTH: '3', RATE_LIMIT_WINDOW: '60', TRUST_PROXY: 'true' } });
  t.teardown(() => server.close());
  const headers = { 'x-forwarded-for': freshIpv4() };
  for (const path of ['/api/%61uth/refresh/', '/%61pi/auth/refresh/', '/api/auth/%72efresh/']) {
    t.equal((await api(server, 'POST', path, { body: { refresh_token: 'krt_x' }, headers })).status, 401, `${path} reaches the refresh handler`);
  }
  const limited = await api(server, 'POST', '/api/%61uth/login/', { body: { email: 'a@example.com', password: 'x' }, headers });
  t.equal(limited.status, 429, 'the encoded login path is limited too');
  t.match(limited.body, { error: 'too_many_requests' });
});

t.test('token endpoint: every spelling the provider accepts shares the per-IP and per-client limits', async (t) => {
  const server = await startServer({ env: { RATE_LIMIT_OIDC: '3', RATE_LIMIT_CLIENT: '3', TRUST_PROXY: 'true' } });
  t.teardown(() => server.close());
  const a = await machineClient(server);
  const b = await machineClient(server);
  const c = await machineClient(server);

  // Per IP: three clients (none reaches its own limit), one address, three spellings.
  const ip = freshIpv4();
  t.equal((await token(server, '/oidc/TOKEN', a, ip)).status, 200, 'the provider serves the upper-case path');
  t.equal((await token(server, '/oidc/token/', b, ip)).status, 200, 'and the trailing slash');
  t.equal((await token(server, '/OIDC/Token', c, ip)).status, 200, 'and a mixed-case mount path');
  const perIp = await token(server, '/oidc/%74oken', a, ip);
  t.equal(perIp.status, 429, 'the fourth request from the address is limited, however spelt');
  t.ok(Number(perIp.headers.get('retry-after')) > 0);

  // Per client: fresh addresses, so only the client's count applies (b and c have one request each).
  const d = await machineClient(server);
  t.equal((await token(server, '/oidc/TOKEN', d, freshIpv4())).status, 200);
  t.equal((await token(server, '/oidc//token', d, freshIpv4())).status, 404, 'a spelling the provider refuses still counts');
  t.equal((await token(server, '/oidc/Token/', d, freshIpv4(), encodeURIComponent(d.clientId).replace(/-/g, '%2D'))).status, 200, 'a percent-encoded client id authenticates as the same client');
  t.equal((await token(server, '/oidc/token', d, freshIpv4())).status, 429, 'and counts against the same client limit');
});

t.test('HTTP Basic: the per-client key is the client id the provider authenticates (RFC 6749 §2.3.1 form decoding)', async (t) => {
  const server = await startServer({ env: { RATE_LIMIT_OIDC: '100', RATE_LIMIT_CLIENT: '2', TRUST_PROXY: 'true' } });
  t.teardown(() => server.close());
  // Our registration schema allows no space in a client id, the protocol does (VSCHAR): declared directly, as
  // a client registered elsewhere could be.
  const clientId = `my app ${randomInt(1e9)}`;
  const secret = 's+e%2Bcret-0123456789abcdef0123456789abcdef';
  await server.app.keryu.services.clients.applyClient(
    { clientId, secret, metadata: { token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'openid' } },
    { type: 'system' },
  );
  const formEncoded = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  const asClient = (id: string) => token(server, '/oidc/token', { clientId, clientSecret: formEncoded(secret) }, freshIpv4(), id);

  t.equal((await asClient(clientId.replace(/ /g, '+'))).status, 200, '`+` is a space: authenticated as the client');
  t.equal((await asClient(clientId.replace(/ /g, '%20'))).status, 200, '`%20` too');
  const limited = await asClient(clientId);
  t.equal(limited.status, 429, 'a third spelling of the same id counts against the same client limit');
  t.equal(limited.headers.get('cache-control'), 'no-store');
  t.match(await limited.json(), { error: 'too_many_requests', error_description: String, retry_after: Number }, 'the token endpoint answers in the OAuth error shape (RFC 6749 §5.2)');
  const plus = await asClient(clientId.replace(/ /g, '%2B'));
  t.equal(plus.status, 401, '`%2B` is a literal plus: another client id (unknown), not limited under this one');
  t.match(await plus.json(), { error: 'invalid_client' });
});

t.test('IPv6: addresses in one /64 share a per-IP limit; another /64 does not', async (t) => {
  const server = await startServer({ env: { RATE_LIMIT_AUTH: '3', RATE_LIMIT_OIDC: '2', RATE_LIMIT_WINDOW: '60', TRUST_PROXY: 'true' } });
  t.teardown(() => server.close());
  const inNet = fresh64();
  const refresh = (ip: string) => api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: 'krt_x' }, headers: { 'x-forwarded-for': ip } });
  for (let n = 1; n <= 3; n++) t.equal((await refresh(inNet(n))).status, 401);
  t.equal((await refresh(inNet(4))).status, 429, 'a fourth address of the /64 is limited');
  t.equal((await refresh(fresh64()(1))).status, 401, 'an address of another /64 is not');

  const form = (ip: string) =>
    fetch(`${server.origin}/interaction/abc/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip }, body: 'csrf=x&email=a&password=b' });
  const formNet = fresh64();
  t.not((await form(formNet(1))).status, 429);
  t.not((await form(formNet(2))).status, 429);
  t.equal((await form(formNet(3))).status, 429, 'the login form counts the /64 too');
});

t.test('brute-force IP counter: failed logins from one /64 count together', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, LOGIN_IP_MAX_FAILURES: '3', TRUST_PROXY: 'true' } });
  t.teardown(() => server.close());
  const inNet = fresh64();
  const attempt = (n: number, ip: string) => api(server, 'POST', '/api/auth/login/', { body: { email: `nobody${n}@example.com`, password: 'wrong password' }, headers: { 'x-forwarded-for': ip } });
  for (let n = 1; n <= 3; n++) t.equal((await attempt(n, inNet(n))).status, 401);
  const refused = await attempt(4, inNet(4));
  t.equal(refused.status, 429, 'a fourth address of the /64 is refused');
  t.match(refused.body, { error: 'too_many_attempts' });
  t.equal((await attempt(5, fresh64()(1))).status, 401, 'another /64 is not');
  t.equal((await attempt(6, '::ffff:192.0.2.10')).status, 401, 'an IPv4-mapped address counts as its IPv4 address');
});
