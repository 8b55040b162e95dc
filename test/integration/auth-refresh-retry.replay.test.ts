/**
 * The refresh retry window answers only the client that made the rotation: the same device and the same
 * network (IPv4 /24, IPv6 /64) as the rotation it repeats. A replay of the rotated token from anywhere else
 * is reuse (the session is revoked), and SESSION_IP_BINDING=strict refuses another address before any retry.
 */
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { api, login, manualClock, NO_RATE_LIMITS, seedAuthUser, type Pair } from '../helpers/auth.js';
import { startServer } from '../helpers/server.js';

type Answer = Pair & { error?: string };
const refresh = (server: { origin: string }, refreshToken: string, ip: string, deviceId?: string) =>
  api<Answer>(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: refreshToken, ...(deviceId ? { device_id: deviceId } : {}) }, headers: { 'x-forwarded-for': ip } });
const loginFrom = (server: { origin: string }, ip: string, body: Record<string, unknown> = {}) => login(server, body, { 'x-forwarded-for': ip });

t.test('a replay from another network is reuse, a retry from the same network is answered', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: { ...NO_RATE_LIMITS, TRUST_PROXY: 'true' }, clock });
  t.teardown(() => server.close());
  await seedAuthUser(server);

  const v4 = await loginFrom(server, '198.51.100.10');
  const rotated = await refresh(server, v4.refresh_token, '198.51.100.10');
  t.equal(rotated.status, 200);
  clock.advance(5);
  const sameNet = await refresh(server, v4.refresh_token, '198.51.100.77');
  t.equal(sameNet.status, 200, 'another address of the /24 (a NAT pool, a DHCP renewal) gets the retry');
  t.equal(sameNet.body.refresh_token, rotated.body.refresh_token, 'the very same pair');
  const replayer = await refresh(server, v4.refresh_token, '203.0.113.5');
  t.match(replayer, { status: 401, body: { error: 'invalid_token' } }, 'another network gets no live pair');
  t.equal((await refresh(server, rotated.body.refresh_token, '198.51.100.10')).status, 401, 'and the session is revoked as reuse');
  await server.app.keryu.services.audit.flush();
  const events = await server.app.keryu.database.db.select().from(auditEvents);
  t.ok(events.some((e) => e.type === 'token.reuse_detected' && e.subjectId === v4.session_id), 'recorded as reuse');

  const v6 = await loginFrom(server, '2001:db8:1:2::1');
  const v6Rotated = await refresh(server, v6.refresh_token, '2001:db8:1:2::1');
  t.equal((await refresh(server, v6.refresh_token, '2001:db8:1:2:aaaa::9')).body.refresh_token, v6Rotated.body.refresh_token, 'IPv6: same /64, same pair');
  t.match(await refresh(server, v6.refresh_token, '2001:db8:1:3::1'), { status: 401, body: { error: 'invalid_token' } }, 'another /64 is reuse');
  t.equal((await refresh(server, v6Rotated.body.refresh_token, '2001:db8:1:2::1')).status, 401, 'family revoked');

  const bound = await loginFrom(server, '198.51.100.10', { device_id: 'phone-1' });
  const boundRotated = await refresh(server, bound.refresh_token, '198.51.100.10', 'phone-1');
  t.equal(boundRotated.status, 200);
  t.match(await refresh(server, bound.refresh_token, '192.0.2.50', 'phone-1'), { status: 401, body: { error: 'invalid_token' } }, 'the same device_id from another network is reuse');
  t.equal((await refresh(server, boundRotated.body.refresh_token, '198.51.100.10', 'phone-1')).status, 401, 'family revoked');
});

t.test('SESSION_IP_BINDING=strict is checked before the retry path', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, TRUST_PROXY: 'true', SESSION_IP_BINDING: 'strict' } });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const first = await loginFrom(server, '198.51.100.10');
  const rotated = await refresh(server, first.refresh_token, '198.51.100.10');
  t.equal(rotated.status, 200);
  const other = await refresh(server, first.refresh_token, '198.51.100.11');
  t.match(other, { status: 401, body: { error: 'ip_mismatch' } }, 'another address, even in the same /24, gets no retry answer');
  t.notOk(other.body.refresh_token);
  const retry = await refresh(server, first.refresh_token, '198.51.100.10');
  t.equal(retry.body.refresh_token, rotated.body.refresh_token, 'the bound address still gets its retry');
  t.equal((await refresh(server, rotated.body.refresh_token, '198.51.100.10')).status, 200, 'and its pair works');
});
