/**
 * Request rate limits on the auth API, the token endpoint (per IP and per client) and the login form:
 * 429 with Retry-After; counters shared by replicas through Redis when REDIS_URL is set.
 */
import { randomInt } from 'node:crypto';
import { createConnection } from 'node:net';
import t from 'tap';
import { api } from '../helpers/auth.js';
import { seedClient } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const redisUp = await new Promise<boolean>((resolve) => {
  const socket = createConnection(6379, '127.0.0.1');
  socket.once('connect', () => (socket.end(), resolve(true)));
  socket.once('error', () => resolve(false));
});
/** A fresh client IP per run, so counters left in Redis by an earlier run do not interfere. */
const freshIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

t.test('auth API: per-IP limit in memory', async (t) => {
  const server = await startServer({ env: { RATE_LIMIT_AUTH: '3', RATE_LIMIT_WINDOW: '60', TRUST_PROXY: 'true' } });
  t.teardown(() => server.close());
  const headers = { 'x-forwarded-for': freshIp() };
  for (let i = 0; i < 3; i++) t.equal((await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: 'krt_x' }, headers })).status, 401);
  const limited = await api(server, 'POST', '/api/auth/login/', { body: { email: 'a@example.com', password: 'x' }, headers });
  t.equal(limited.status, 429);
  t.match(limited.body, { error: 'too_many_requests' });
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After');
  t.equal((await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: 'krt_x' }, headers: { 'x-forwarded-for': freshIp() } })).status, 401, 'other IPs are not limited');
});

t.test('token endpoint: per client and per IP; login form: per IP', async (t) => {
  const server = await startServer({ env: { RATE_LIMIT_CLIENT: '2', RATE_LIMIT_OIDC: '5', TRUST_PROXY: 'true' } });
  t.teardown(() => server.close());
  const seeded = await seedClient(server, { grant_types: ['client_credentials'], scope: 'openid', redirect_uris: [], response_types: [] });
  const other = await seedClient(server, { grant_types: ['client_credentials'], scope: 'openid', redirect_uris: [], response_types: [] });
  const token = (c: { clientId: string; clientSecret: string | undefined }, ip: string) =>
    fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`,
        'x-forwarded-for': ip,
      },
      body: 'grant_type=client_credentials',
    });
  t.equal((await token(seeded, freshIp())).status, 200);
  t.equal((await token(seeded, freshIp())).status, 200);
  const limited = await token(seeded, freshIp());
  t.equal(limited.status, 429, 'the client is limited whatever its IP');
  t.ok(limited.headers.get('retry-after'));
  t.equal((await token(other, freshIp())).status, 200, 'another client is not');

  const ip = freshIp();
  const statuses = [];
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`${server.origin}/interaction/abc/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip }, body: 'csrf=x&email=a&password=b' });
    statuses.push(res.status);
  }
  t.equal(statuses[5], 429, 'the login form is limited per IP');
  t.notOk(statuses.slice(0, 5).includes(429));
  for (const form of ['verify', 'resend', 'enroll/totp']) {
    const res = await fetch(`${server.origin}/interaction/abc/${form}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip }, body: 'csrf=x&method=totp&code=123456' });
    t.equal(res.status, 429, `the ${form} form shares the limit`);
  }
});

t.test('Redis store: replicas share the counters', { skip: redisUp ? false : 'Redis is not running on 127.0.0.1:6379' }, async (t) => {
  const env = { RATE_LIMIT_AUTH: '4', RATE_LIMIT_WINDOW: '60', TRUST_PROXY: 'true', REDIS_URL };
  const a = await startServer({ env });
  t.teardown(() => a.close());
  const b = await startServer({ env });
  t.teardown(() => b.close());
  const headers = { 'x-forwarded-for': freshIp() };
  const hit = (s: { origin: string }) => api(s, 'POST', '/api/auth/refresh/', { body: { refresh_token: 'krt_x' }, headers });
  t.equal((await hit(a)).status, 401);
  t.equal((await hit(b)).status, 401);
  t.equal((await hit(a)).status, 401);
  t.equal((await hit(b)).status, 401);
  const limited = await hit(a);
  t.equal(limited.status, 429, 'the fifth request is refused, though each replica saw only two or three');
  t.ok(Number(limited.headers.get('retry-after')) > 0);
});
