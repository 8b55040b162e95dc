/**
 * The first-party auth API through HTTP on a real server: login, tokens, refresh, logout, personal tokens,
 * the further-check step, timeouts, device and IP binding, activity, and malformed input.
 */
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { generate } from 'otplib';
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { api, login, manualClock, NO_RATE_LIMITS, seedAuthUser, type Pair } from '../helpers/auth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

async function events(server: TestServer) {
  await server.app.keryu.services.audit.flush();
  return server.app.keryu.database.db.select().from(auditEvents);
}

t.test('login, list, refresh and logout', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const user = await seedAuthUser(server);

  const res = await api<Pair>(server, 'POST', '/api/auth/login/', { body: { email: ' Alice@Example.com ', password: TEST_PASSWORD, device_name: 'Work laptop' } });
  t.equal(res.status, 200);
  t.equal(res.headers.get('cache-control'), 'no-store');
  const pair = res.body;
  t.equal(pair.token_type, 'Bearer');
  t.equal(pair.expires_in, 600, 'access tokens live 10 minutes by default');
  t.match(pair.refresh_token, /^krt_/);

  const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
  const { payload, protectedHeader } = await jwtVerify(pair.access_token, jwks, { issuer: server.issuer, audience: server.config.apiAudience });
  t.equal(protectedHeader.typ, 'at+jwt', 'RFC 9068 access token');
  t.equal(payload.sub, user.id);
  t.equal(payload.sid, pair.session_id, 'carries the session id');
  t.equal((payload.exp ?? 0) - (payload.iat ?? 0), 600);

  const list = await api<{ items: Array<Record<string, unknown>>; next_cursor: string | null }>(server, 'GET', '/api/auth/tokens/', { token: pair.access_token });
  t.equal(list.status, 200);
  t.equal(list.body.items.length, 1);
  t.match(list.body.items[0], { id: pair.session_id, kind: 'session', name: 'Work laptop', is_active: true, current: true, ip_address: '127.0.0.1' });
  t.match(list.body.items[0]?.device_info, { device_name: 'Work laptop', user_agent: String });
  t.notOk(JSON.stringify(list.body).includes(pair.refresh_token), 'never a token value');

  t.equal((await api(server, 'GET', '/api/auth/tokens/')).status, 401, 'no bearer token');
  t.match((await api(server, 'GET', '/api/auth/tokens/', { token: 'garbage' })).body, { error: 'invalid_token' });

  const refreshed = await api<Pair>(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair.refresh_token } });
  t.equal(refreshed.status, 200);
  t.not(refreshed.body.refresh_token, pair.refresh_token, 'rotated');
  t.equal(refreshed.body.session_id, pair.session_id, 'same session');
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: refreshed.body.access_token })).status, 200);

  const other = await login(server);
  t.equal((await api(server, 'POST', '/api/auth/logout/', { token: refreshed.body.access_token })).status, 204);
  t.match(await api(server, 'GET', '/api/auth/tokens/', { token: refreshed.body.access_token }), { status: 401, body: { error: 'invalid_token' } }, 'the access token dies at once');
  t.match(await api(server, 'GET', '/api/auth/tokens/', { token: pair.access_token }), { status: 401 }, 'and the older one too');
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: refreshed.body.refresh_token } }), { status: 401, body: { error: 'invalid_token' } });
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: other.access_token })).status, 200, 'another session is untouched');

  const third = await login(server);
  t.equal((await api(server, 'POST', '/api/auth/logout/', { token: other.access_token, body: { all_sessions: true } })).status, 204);
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: third.access_token })).status, 401, 'all_sessions ends every session');
  t.equal((await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: third.refresh_token } })).status, 401);

  const types = (await events(server)).map((e) => `${e.type}:${e.outcome}`);
  for (const type of ['login:success', 'session.created:success', 'session.refreshed:success', 'logout:success', 'session.revoked:success']) t.ok(types.includes(type), `${type} audited`);
});

t.test('wrong credentials and malformed input', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);

  const wrong = await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: 'not the password at all' } });
  const unknown = await api(server, 'POST', '/api/auth/login/', { body: { email: 'nobody@example.com', password: 'not the password at all' } });
  t.equal(wrong.status, 401);
  t.same(wrong.body, { error: 'invalid_credentials', message: 'the email or password is incorrect' });
  t.same(unknown.body, wrong.body, 'unknown account: the same body');
  t.equal(unknown.status, wrong.status);
  t.match(await api(server, 'POST', '/api/auth/login/', { body: { email: 'not an email', password: 'x' } }), { status: 401, body: { error: 'invalid_credentials' } });

  t.match(await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com' } }), { status: 400, body: { error: 'invalid_request' } }, 'missing field');
  t.match(await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: 42 } }), { status: 400, body: { error: 'invalid_request' } }, 'wrong type');
  t.match(await api(server, 'POST', '/api/auth/login/', { raw: '{"email": "alice@' }), { status: 400, body: { error: 'invalid_request' } }, 'malformed JSON');
  t.match(await api(server, 'POST', '/api/auth/login/', { raw: '<email/>', headers: { 'content-type': 'application/xml' } }), { status: 415 }, 'not JSON');
  t.match(
    await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: 'x'.repeat(70 * 1024) } }),
    { status: 413, body: { error: 'payload_too_large' } },
    'oversized body',
  );
  t.match(await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: 'x'.repeat(2000) } }), { status: 400 }, 'password over 1024');
  t.match(await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: TEST_PASSWORD, device_id: 'has spaces in it' } }), { status: 400 });
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: 'krt_unknown' } }), { status: 401, body: { error: 'invalid_token' } });
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: 'x'.repeat(600) } }), { status: 400 });
  t.match(await api(server, 'GET', '/api/auth/login/'), { status: 405 }, 'unsupported method');
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: 'krt_\u0000' } }), { status: 401 }, 'NUL in a token');

  const failures = (await events(server)).filter((e) => e.type === 'login' && e.outcome === 'failure');
  t.ok(failures.length >= 3, 'failures audited');
  t.notOk(JSON.stringify(failures).includes('not the password'), 'never the password');
});

t.test('personal API tokens', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: { ...NO_RATE_LIMITS, PERSONAL_TOKEN_MAX_TTL: String(30 * 86400), PERSONAL_TOKEN_TTL: String(7 * 86400) }, clock });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const session = await login(server);
  clock.advance(1);

  const created = await api<Record<string, string>>(server, 'POST', '/api/auth/tokens/', { token: session.access_token, body: { name: 'CI', scopes: ['auth.users.manage'] } });
  t.equal(created.status, 201);
  t.match(created.body, { kind: 'personal', name: 'CI', is_active: true, token: /^kpat_/ });
  t.same(created.body.scopes, ['auth.users.manage']);
  const pat = created.body.token!;
  const id = created.body.id!;
  t.equal(new Date(created.body.expires_at!).getTime() - new Date(created.body.created_at!).getTime(), 7 * 86400_000, 'default lifetime');

  const listed = await api<{ items: Array<Record<string, unknown>> }>(server, 'GET', '/api/auth/tokens/', { token: pat });
  t.equal(listed.status, 200, 'the personal token authenticates');
  t.notOk(JSON.stringify(listed.body).includes(pat), 'its value is never shown again');
  t.equal(listed.body.items[0]?.id, id, 'newest first');
  t.equal(listed.body.items[0]?.current, true, 'marked current when used');
  t.match(await api(server, 'POST', '/api/auth/tokens/', { token: pat, body: { name: 'escalate' } }), { status: 403 }, 'a personal token cannot mint tokens');

  t.match(await api(server, 'POST', '/api/auth/tokens/', { token: session.access_token, body: { name: 'long', expires_in: 31 * 86400 } }), { status: 400, body: { error: 'invalid_expiry' } });
  t.match(await api(server, 'POST', '/api/auth/tokens/', { token: session.access_token, body: { name: '' } }), { status: 400 });

  const renamed = await api(server, 'PUT', `/api/auth/tokens/${id}/`, { token: session.access_token, body: { name: 'CI deploy' } });
  t.match(renamed, { status: 200, body: { name: 'CI deploy' } });
  const createdAt = new Date(created.body.created_at!).getTime();
  t.match(
    await api(server, 'PUT', `/api/auth/tokens/${id}/`, { token: session.access_token, body: { expires_at: new Date(createdAt + 31 * 86400_000).toISOString() } }),
    { status: 400, body: { error: 'invalid_expiry' } },
    'beyond the policy maximum from creation',
  );
  t.match(
    await api(server, 'PUT', `/api/auth/tokens/${id}/`, { token: session.access_token, body: { expires_at: new Date(createdAt + 29 * 86400_000).toISOString() } }),
    { status: 200 },
    'within it',
  );

  t.match(await api(server, 'PUT', `/api/auth/tokens/${id}/`, { token: session.access_token, body: { is_active: false } }), { status: 200, body: { is_active: false } });
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: pat })).status, 401, 'deactivated: refused');
  // Deactivation is revocation: a revoked token never comes back (issue 9 M3; this used to reactivate it).
  t.match(await api(server, 'PUT', `/api/auth/tokens/${id}/`, { token: session.access_token, body: { is_active: true } }), { status: 409, body: { error: 'conflict' } });
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: pat })).status, 401, 'still refused');

  clock.advance(30 * 86400);
  const fresh = await login(server);
  t.match(await api(server, 'PUT', `/api/auth/tokens/${id}/`, { token: fresh.access_token, body: { is_active: true } }), { status: 409 }, 'nor once expired');

  t.equal((await api(server, 'DELETE', `/api/auth/tokens/${id}/`, { token: fresh.access_token })).status, 204);
  t.equal((await api(server, 'DELETE', `/api/auth/tokens/${id}/`, { token: fresh.access_token })).status, 404, 'gone');
  t.match(await api(server, 'PUT', `/api/auth/tokens/not-a-uuid/`, { token: fresh.access_token, body: { name: 'x' } }), { status: 404 });

  const types = (await events(server)).map((e) => e.type);
  t.ok(types.includes('token.created') && types.includes('token.updated') && types.includes('token.revoked'), 'token changes audited');
});

t.test('session timeouts: idle and absolute', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: { ...NO_RATE_LIMITS, REFRESH_TOKEN_IDLE_TTL: '100', REFRESH_TOKEN_ABSOLUTE_TTL: '250', ACCESS_TOKEN_TTL: '600' }, clock });
  t.teardown(() => server.close());
  await seedAuthUser(server);

  const idle = await login(server);
  clock.advance(101);
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: idle.refresh_token } }), { status: 401, body: { error: 'session_expired' } }, 'idle timeout');
  t.match(await api(server, 'GET', '/api/auth/tokens/', { token: idle.access_token }), { status: 401, body: { error: 'session_expired' } }, 'its access token too');

  let pair = await login(server);
  for (let i = 0; i < 2; i++) {
    clock.advance(90);
    const next = await api<Pair>(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair.refresh_token } });
    t.equal(next.status, 200, 'refresh within the idle time keeps the session');
    pair = next.body;
  }
  clock.advance(90);
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair.refresh_token } }), { status: 401, body: { error: 'session_expired' } }, 'absolute lifetime');
});

t.test('device binding and IP changes', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, TRUST_PROXY: 'true' } });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const from = (ip: string) => ({ 'x-forwarded-for': ip });

  const bound = await login(server, { device_id: 'phone-1' });
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: bound.refresh_token } }), { status: 401, body: { error: 'device_mismatch' } }, 'device id missing');
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: bound.refresh_token, device_id: 'phone-1' } }), { status: 401, body: { error: 'invalid_token' } }, 'the session was revoked');

  const other = await login(server, { device_id: 'phone-2' });
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: other.refresh_token, device_id: 'phone-3' } }), { status: 401, body: { error: 'device_mismatch' } });

  const roaming = await login(server, {}, from('10.0.0.1'));
  const moved = await api<Pair>(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: roaming.refresh_token }, headers: from('10.0.0.2') });
  t.equal(moved.status, 200, 'a new IP is allowed by default');
  const list = await api<{ items: Array<{ id: string; ip_address: string }> }>(server, 'GET', '/api/auth/tokens/', { token: moved.body.access_token, headers: from('10.0.0.2') });
  t.equal(list.body.items.find((i) => i.id === roaming.session_id)?.ip_address, '10.0.0.2', 'and recorded');

  const all = await events(server);
  t.ok(all.some((e) => e.type === 'session.device_mismatch'), 'device mismatch audited');
  t.ok(all.some((e) => e.type === 'session.ip_changed' && e.outcome === 'success' && e.ip === '10.0.0.2'), 'IP change audited');
});

t.test('SESSION_IP_BINDING=strict refuses a refresh from another IP', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, TRUST_PROXY: 'true', SESSION_IP_BINDING: 'strict' } });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const pair = await login(server, {}, { 'x-forwarded-for': '10.0.0.1' });
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair.refresh_token }, headers: { 'x-forwarded-for': '10.0.0.9' } }), { status: 401, body: { error: 'ip_mismatch' } });
  t.equal((await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair.refresh_token }, headers: { 'x-forwarded-for': '10.0.0.1' } })).status, 200, 'the same IP still works');
});

t.test('a further check (the verify step)', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: NO_RATE_LIMITS, clock });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const mfaUser = await seedAuthUser(server, 'mfa@example.com');
  const { factors } = server.app.keryu.services;
  const enrolled = await factors.enrollTotp(mfaUser);
  const totp = () => generate({ secret: enrolled.secret, epoch: Math.floor(clock().getTime() / 1000) });
  await factors.confirm(mfaUser, 'totp', enrolled.factor_id, await totp());
  clock.advance(30);
  const start = async (deviceId?: string) => {
    const res = await api<{ mfa_required: boolean; challenge_id: string; methods: string[]; expires_in: number; access_token?: string }>(server, 'POST', '/api/auth/login/', {
      body: { email: 'mfa@example.com', password: TEST_PASSWORD, ...(deviceId ? { device_id: deviceId } : {}) },
    });
    t.equal(res.status, 200);
    return res.body;
  };

  t.notOk((await login(server)).access_token === undefined, 'a user without factors gets tokens directly');
  const challenge = await start('tablet');
  t.match(challenge, { mfa_required: true, reason: 'mfa', methods: ['totp'], expires_in: 300 });
  t.notOk(challenge.access_token, 'no token before the check');
  const code = await totp();
  const verify = (body: Record<string, unknown>) => api<Pair & { error?: string }>(server, 'POST', '/api/auth/verify/', { body: { challenge_id: challenge.challenge_id, method: 'totp', code, device_id: 'tablet', ...body } });

  t.match(await verify({ challenge_id: 'unknown' }), { status: 400, body: { error: 'invalid_challenge' } });
  t.match(await verify({ device_id: 'another' }), { status: 400, body: { error: 'device_mismatch' } }, 'another device than the login\'s');
  t.match(await verify({ method: 'sms' }), { status: 400, body: { error: 'method_not_allowed' } });
  t.match(await verify({ code: code === '000000' ? '111111' : '000000' }), { status: 401, body: { error: 'invalid_code', attempts_left: 4 } });
  const done = await verify({});
  t.equal(done.status, 200);
  t.equal(decodeJwt(done.body.access_token).sid, done.body.session_id);
  t.match(await verify({}), { status: 400, body: { error: 'challenge_consumed' } }, 'single use');

  const limited = await start();
  for (let i = 0; i < 5; i++) {
    t.equal((await api(server, 'POST', '/api/auth/verify/', { body: { challenge_id: limited.challenge_id, method: 'totp', code: 'nope' } })).status, 401);
  }
  clock.advance(30);
  t.match(await api(server, 'POST', '/api/auth/verify/', { body: { challenge_id: limited.challenge_id, method: 'totp', code: await totp() } }), { status: 429, body: { error: 'too_many_attempts' } }, 'five attempts at most');

  const late = await start();
  clock.advance(301);
  t.match(await api(server, 'POST', '/api/auth/verify/', { body: { challenge_id: late.challenge_id, method: 'totp', code: await totp() } }), { status: 400, body: { error: 'challenge_expired' } });
});

t.test('activity: the caller\'s own events, paginated', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  await seedAuthUser(server, 'bob@example.com');
  const alice = await login(server);
  const bob = await login(server, { email: 'bob@example.com' });
  await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: alice.refresh_token } });
  await server.app.keryu.services.audit.flush();

  const first = await api<{ items: Array<{ type: string; occurred_at: string; details: Record<string, unknown> }>; next_cursor: string | null }>(server, 'GET', '/api/auth/activity/?limit=2', { token: alice.access_token });
  t.equal(first.status, 200);
  t.equal(first.body.items.length, 2);
  t.ok(first.body.next_cursor, 'a next page');
  t.equal(first.body.items[0]?.type, 'session.refreshed', 'newest first');
  const second = await api<{ items: Array<{ type: string }> }>(server, 'GET', `/api/auth/activity/?limit=200&cursor=${first.body.next_cursor}`, { token: alice.access_token });
  const types = [...first.body.items, ...second.body.items].map((e) => e.type);
  t.ok(types.includes('login') && types.includes('user.created'), 'older events on the next page');
  const bobs = await api<{ items: Array<{ details: Record<string, unknown> }> }>(server, 'GET', '/api/auth/activity/', { token: bob.access_token });
  t.notOk(JSON.stringify(bobs.body).includes(alice.session_id), 'never another user\'s events');
  t.match(await api(server, 'GET', '/api/auth/activity/?limit=500', { token: alice.access_token }), { status: 400 });
  t.match(await api(server, 'GET', '/api/auth/activity/?cursor=bogus', { token: alice.access_token }), { status: 400 });
});

t.test('the OpenAPI document describes the auth API', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const doc = await api<{ paths: Record<string, Record<string, unknown>> }>(server, 'GET', '/docs/json');
  for (const path of ['/api/auth/login/', '/api/auth/verify/', '/api/auth/refresh/', '/api/auth/logout/', '/api/auth/tokens/', '/api/auth/tokens/{id}/', '/api/auth/activity/', '/api/auth/password/reset/', '/api/auth/password/reset/confirm/', '/api/auth/password/change/', '/api/auth/verify/resend/', '/api/auth/mfa/', '/api/auth/mfa/totp/', '/api/auth/mfa/sms/', '/api/auth/mfa/email/', '/api/auth/mfa/{type}/{id}/confirm/', '/api/auth/mfa/recovery-codes/', '/api/auth/mfa/reauthenticate/', '/api/auth/mfa/{id}/', '/api/auth/devices/', '/api/auth/devices/{id}/']) {
    t.ok(doc.body.paths[path], `${path} documented`);
  }
});

t.test('introspection reports a token inactive as soon as its session is revoked', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const { seedClient } = await import('../helpers/oidc.js');
  const rs = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'openid' });
  const introspect = (token: string, secret = rs.clientSecret!) =>
    fetch(`${server.origin}/api/auth/introspect/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${rs.clientId}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ token }).toString(),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));

  const pair = await login(server);
  const pat = await api<{ token: string }>(server, 'POST', '/api/auth/tokens/', { token: pair.access_token, body: { name: 'bot', scopes: ['auth.audit.read'] } });
  t.match(await introspect(pair.access_token), { status: 200, body: { active: true, sid: pair.session_id, client_id: 'urn:keryu:first-party' } });
  t.match(await introspect(pat.body.token), { status: 200, body: { active: true, scope: 'auth.audit.read' } });
  t.match(await introspect(pair.access_token, 'wrong-secret-wrong-secret-wrong-secret'), { status: 401, body: { error: 'invalid_client' } });
  t.match(await introspect('garbage'), { status: 200, body: { active: false } });

  await api(server, 'DELETE', `/api/auth/tokens/${pair.session_id}/`, { token: (await login(server)).access_token });
  t.same((await introspect(pair.access_token)).body, { active: false }, 'inactive at once after revocation');
});
