/**
 * The first factor is not a login: with the password done and a step pending, nothing that signs anyone in
 * exists yet. The challenge id is no token anywhere (refresh, Bearer, OIDC token, userinfo, introspection),
 * no session row exists for the user until /verify/ completes, and an enrolment endpoint does not accept a
 * challenge whose step is not enrolment.
 */
import { eq } from 'drizzle-orm';
import t from 'tap';
import { authTokens } from '../../src/db/schema/index.js';
import { api, seedAuthUser } from '../helpers/auth.js';
import { discover, seedClient } from '../helpers/oidc.js';
import { challengeFor, codeIn, enrolTotp, isPair, mailbox, seedWithSession, startMfaServer, totpAt, verify, type MfaServer } from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

async function sessionRows(env: MfaServer, userId: string) {
  return env.server.app.keryu.database.db.select().from(authTokens).where(eq(authTokens.userId, userId));
}

t.test('a half-finished sign-in (TOTP step) yields nothing that works as a token', async (t) => {
  const env = await startMfaServer(t);
  const { server, clock } = env;
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);
  // Start from nothing: the seeding session is ended.
  t.equal((await api(server, 'POST', '/api/auth/logout/', { token: pair.access_token, body: { all_sessions: true } })).status, 204);
  const active = async () => (await sessionRows(env, user.id)).filter((r) => !r.revokedAt && r.kind === 'session');
  t.equal((await active()).length, 0);

  const challenge = await challengeFor(server, 'alice@example.com', { device_id: 'thief' });
  const id = challenge.challenge_id;
  t.notOk('access_token' in challenge || 'refresh_token' in challenge, 'no token in the answer');
  t.equal((await active()).length, 0, 'no session row before /verify/');

  for (const refresh of [id, `krt_${id}`, 'krt_garbage', 'garbage']) {
    t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: refresh, device_id: 'thief' } }), { status: 401, body: { error: 'invalid_token' } }, `refresh with ${refresh.slice(0, 8)}...`);
  }
  for (const [method, path] of [['GET', '/api/auth/tokens/'], ['GET', '/api/auth/mfa/'], ['GET', '/api/auth/devices/'], ['GET', '/api/auth/activity/'], ['POST', '/api/auth/mfa/recovery-codes/'], ['POST', '/api/auth/tokens/']] as const) {
    const res = await api(server, method, path, { token: id, ...(method === 'POST' ? { body: { name: 'x' } } : {}) });
    t.equal(res.status, 401, `Bearer <challenge id> on ${method} ${path}`);
  }
  t.match(await api(server, 'POST', '/api/auth/mfa/totp/', { token: id, body: { challenge_id: id, device_id: 'thief' } }), { status: 401 }, 'a Bearer challenge id on enrolment');
  t.match(await api(server, 'POST', '/api/auth/mfa/totp/', { body: { challenge_id: id, device_id: 'thief' } }), { status: 400, body: { error: 'method_not_allowed' } }, 'an mfa step is not an enrolment: no factor can be added with it');
  t.match(await api(server, 'POST', '/api/auth/mfa/email/', { body: { challenge_id: id, device_id: 'thief', email: 'thief@example.net' } }), { status: 400, body: { error: 'method_not_allowed' } });
  t.match(await api(server, 'POST', '/api/auth/mfa/sms/', { body: { challenge_id: id, device_id: 'thief', phone: '+14155552671' } }), { status: 400, body: { error: 'method_not_allowed' } });
  t.equal(env.twilio.messages.length, 0, 'no SMS sent to the thief');
  t.equal(env.smtp.messages.filter((m) => m.to.includes('thief@example.net')).length, 0, 'no mail sent to the thief');

  // The OIDC endpoints.
  const rp = await seedClient(server);
  const config = await discover(server, rp);
  const meta = config.serverMetadata();
  const basic = `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret}`).toString('base64')}`;
  const token = (params: Record<string, string>) =>
    fetch(meta.token_endpoint!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, body: new URLSearchParams(params).toString() }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as { error?: string; access_token?: string },
    }));
  t.match(await token({ grant_type: 'refresh_token', refresh_token: id }), { status: 400, body: { error: 'invalid_grant' } }, 'the challenge id is no refresh token');
  t.match(await token({ grant_type: 'authorization_code', code: id, redirect_uri: 'http://127.0.0.1:9/callback', code_verifier: 'a'.repeat(43) }), { status: 400, body: { error: 'invalid_grant' } }, 'nor an authorization code');
  const ropc = await token({ grant_type: 'password', username: 'alice@example.com', password: TEST_PASSWORD });
  t.equal(ropc.status, 400, 'no password grant to go around the step');
  t.notOk(ropc.body.access_token);
  const userinfo = await fetch(meta.userinfo_endpoint!, { headers: { authorization: `Bearer ${id}` } });
  t.equal(userinfo.status, 401, 'userinfo refuses it');
  const rs = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'openid' });
  const introspected = await fetch(`${server.origin}/api/auth/introspect/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${rs.clientId}:${rs.clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ token: id }).toString(),
  });
  t.equal(introspected.status, 200);
  t.same(await introspected.json(), { active: false }, 'introspection: not an active token');

  t.equal((await active()).length, 0, 'still no session after all that');
  const done = await verify(server, { challenge_id: id, method: 'totp', code: await totpAt(secret, clock), device_id: 'thief' });
  t.ok(isPair(done.body), 'the owner of the factor completes it');
  t.equal((await active()).length, 1, 'and only then a session exists');
});

t.test('a half-finished new-device sign-in (no factor) yields no session either', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  const { server, smtp } = env;
  const user = await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const challenge = await challengeFor(server, 'alice@example.com', { device_id: 'thief' });
  t.equal(challenge.reason, 'new_device');
  const code = codeIn(await inbox.next());
  t.equal((await sessionRows(env, user.id)).length, 0, 'no session row');
  t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: challenge.challenge_id, device_id: 'thief' } }), { status: 401 });
  t.match(await api(server, 'GET', '/api/auth/tokens/', { token: challenge.challenge_id }), { status: 401 });
  t.match(await api(server, 'POST', '/api/auth/mfa/totp/', { body: { challenge_id: challenge.challenge_id, device_id: 'thief' } }), { status: 400, body: { error: 'method_not_allowed' } }, 'no enrolment through a device check');
  t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code, device_id: 'thief' })).body));
  t.equal((await sessionRows(env, user.id)).length, 1);
});
