/**
 * Passkeys through the JSON API, with a software authenticator (test/helpers/webauthn.ts): registration
 * by a recent session, passwordless sign-in, a passkey as the second factor, enrolment at sign-in, amr,
 * list, rename and remove (another user's id: 404), an administrator's reset, and the RP checks at start-up.
 */
import { and, eq } from 'drizzle-orm';
import t from 'tap';
import { parseConfig } from '../../src/config/index.js';
import { authTokens } from '../../src/db/schema/index.js';
import { api, seedAuthUser } from '../helpers/auth.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';
import { auditLog, challengeFor, codeIn, isPair, mailbox, seedWithSession, startMfaServer, verify, type LoginAnswer } from '../helpers/mfa.js';
import { serviceAccount } from '../helpers/rbac.js';
import { loginOptions, registerPasskey, SoftAuthenticator, type CreationOptions } from '../helpers/webauthn.js';

type Env = Awaited<ReturnType<typeof startMfaServer>>;

async function amrOf(env: Env, userId: string, sessionId: string): Promise<string[]> {
  const [row] = await env.server.app.keryu.database.db.select({ amr: authTokens.amr }).from(authTokens).where(and(eq(authTokens.id, sessionId), eq(authTokens.userId, userId)));
  return row?.amr ?? [];
}

const passwordless = (env: Env, response: unknown, extra: Record<string, unknown> = {}) => api<LoginAnswer>(env.server, 'POST', '/api/auth/login/webauthn/', { body: { response, ...extra } });

t.test('register a passkey, then sign in without a password (amr hwk + user + mfa)', async (t) => {
  const env = await startMfaServer(t);
  const { server } = env;
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const key = new SoftAuthenticator({ origin: server.origin });
  const options = await api<CreationOptions & { attestation: string; authenticatorSelection: Record<string, string> }>(server, 'POST', '/api/auth/mfa/webauthn/options/', { token: pair.access_token });
  t.equal(options.status, 200);
  t.match(options.body, { rp: { id: '127.0.0.1' }, attestation: 'none', authenticatorSelection: { residentKey: 'preferred' } }, 'RP id from the issuer, attestation none');
  t.not(options.body.user.id, user.id, 'the user handle is not the account id');
  const registered = await api<{ id: string; name: string; backup_eligible: boolean }>(server, 'POST', '/api/auth/mfa/webauthn/', { token: pair.access_token, body: { response: key.register(options.body), name: 'Laptop' } });
  t.match(registered, { status: 201, body: { name: 'Laptop', backup_eligible: false, last_used_at: null } });
  t.match((await api<{ items: unknown[] }>(server, 'GET', '/api/auth/mfa/', { token: pair.access_token })).body.items, [{ type: 'webauthn', label: 'Laptop', active: true, preferred: true }], 'a passkey is a factor');

  const answer = await passwordless(env, key.assert(await loginOptions(api, server)));
  t.equal(answer.status, 200, JSON.stringify(answer.body));
  t.ok(isPair(answer.body), 'a token pair, no password');
  t.same(await amrOf(env, user.id, answer.body.session_id!), ['hwk', 'user', 'mfa'], 'device-bound passkey: hwk, user verified, multi-factor');
  const [passkey] = (await api<{ items: Array<{ last_used_at: string | null }> }>(server, 'GET', '/api/auth/mfa/webauthn/', { token: pair.access_token })).body.items;
  t.ok(passkey?.last_used_at, 'last used is recorded');
  const events = await auditLog(server);
  t.ok(events.some((e) => e.type === 'login' && e.outcome === 'success' && (e.details as { method?: string }).method === 'hwk+user+mfa'), 'the sign-in is audited');
  t.ok(events.some((e) => e.type === 'mfa.factor_activated' && (e.details as { type?: string }).type === 'webauthn'), 'the registration is audited');
});

t.test('a synced passkey is swk; a password login offers the passkey as the second factor (amr pwd + hwk/swk + mfa)', async (t) => {
  const env = await startMfaServer(t);
  const { server } = env;
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const synced = new SoftAuthenticator({ origin: server.origin, backupEligible: true, backedUp: true, uv: false });
  t.match(await registerPasskey(api, server, pair.access_token, synced), { backup_eligible: true, backed_up: true });

  const challenge = await challengeFor(server, 'alice@example.com');
  t.match(challenge, { reason: 'mfa', methods: ['webauthn'] }, 'the passkey is the step\'s method');
  const options = await loginOptions(api, server, { challenge_id: challenge.challenge_id });
  t.same((options.allowCredentials ?? []).map((c) => c.id), [synced.id], 'the user\'s passkeys are allowed');
  const done = await api<LoginAnswer>(server, 'POST', '/api/auth/login/webauthn/', { body: { challenge_id: challenge.challenge_id, response: synced.assert(options) } });
  t.ok(isPair(done.body), JSON.stringify(done.body));
  t.same((await amrOf(env, user.id, done.body.session_id!)).sort(), ['mfa', 'pwd', 'swk'], 'no user verification: no `user`; synced: swk');

  // A passkey without user verification cannot sign in without a password.
  const refused = await passwordless(env, synced.assert(await loginOptions(api, server)));
  t.match(refused, { status: 401, body: { error: 'invalid_credentials' } }, 'user verification missing: refused for passwordless');
});

t.test('a login that must enrol a factor can enrol a passkey', async (t) => {
  const env = await startMfaServer(t, { MFA_REQUIRED: 'true' });
  const { server } = env;
  await seedAuthUser(server, 'alice@example.com');
  // An untrusted device proves the mailbox before enrolling (plan.ts), then enrols.
  const inbox = mailbox(env.smtp, 'alice@example.com');
  const challenge = await challengeFor(server, 'alice@example.com');
  t.match(challenge, { reason: 'new_device' });
  const next = await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code: codeIn(await inbox.next()) });
  t.match(next.body, { reason: 'enroll', methods: ['totp', 'sms', 'email', 'webauthn'] }, 'enrolment offers a passkey');
  const key = new SoftAuthenticator({ origin: server.origin });
  const options = await api<CreationOptions>(server, 'POST', '/api/auth/mfa/webauthn/options/', { body: { challenge_id: challenge.challenge_id } });
  t.equal(options.status, 200, JSON.stringify(options.body));
  const done = await api<LoginAnswer>(server, 'POST', '/api/auth/mfa/webauthn/', { body: { challenge_id: challenge.challenge_id, response: key.register(options.body), name: 'Phone' } });
  t.ok(isPair(done.body), `the login completes: ${JSON.stringify(done.body)}`);
  const user = (await server.app.keryu.services.users.findUserByEmail('alice@example.com'))!;
  t.same((await amrOf(env, user.id, done.body.session_id!)).sort(), ['email', 'hwk', 'mfa', 'pwd', 'user']);
  t.ok((await passwordless(env, key.assert(await loginOptions(api, server)))).body.access_token, 'and the passkey signs in without a password');
});

t.test('a passkey satisfies a role\'s mfa_required for API access', async (t) => {
  const env = await startMfaServer(t);
  const { server } = env;
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const key = new SoftAuthenticator({ origin: server.origin });
  await registerPasskey(api, server, pair.access_token, key);
  const mfaPolicy = server.app.keryu.services.providerDeps.sessionSatisfiesMfa;
  const answer = await passwordless(env, key.assert(await loginOptions(api, server)));
  t.ok(await mfaPolicy(user.id, await amrOf(env, user.id, answer.body.session_id!)), 'a passwordless passkey session satisfies the MFA rule');
});

t.test('list, rename, remove: only the owner, removal re-authenticated, admin reset removes passkeys', async (t) => {
  const env = await startMfaServer(t);
  const { server } = env;
  const alice = await seedWithSession(server, 'alice@example.com');
  const bob = await seedWithSession(server, 'bob@example.com');
  const aliceKey = new SoftAuthenticator({ origin: server.origin });
  const passkey = await registerPasskey(api, server, alice.pair.access_token, aliceKey, 'Laptop');
  const second = await registerPasskey(api, server, alice.pair.access_token, new SoftAuthenticator({ origin: server.origin }), 'Phone');

  t.match(await api(server, 'PUT', `/api/auth/mfa/webauthn/${passkey.id}/`, { token: bob.pair.access_token, body: { name: 'Mine now' } }), { status: 404 }, 'another user\'s passkey: 404 on rename');
  t.match(await api(server, 'DELETE', `/api/auth/mfa/webauthn/${passkey.id}/`, { token: bob.pair.access_token, body: { password: TEST_PASSWORD } }), { status: 404 }, 'and on remove');
  t.equal((await api<{ items: unknown[] }>(server, 'GET', '/api/auth/mfa/webauthn/', { token: bob.pair.access_token })).body.items.length, 0, 'bob lists none of alice\'s');
  t.match(await api(server, 'PUT', `/api/auth/mfa/webauthn/${passkey.id}/`, { token: alice.pair.access_token, body: { name: 'Work\nlaptop' } }), { status: 400 }, 'a name with a line break is refused');
  t.match(await api(server, 'PUT', `/api/auth/mfa/webauthn/${passkey.id}/`, { token: alice.pair.access_token, body: { name: 'Work laptop' } }), { status: 200, body: { name: 'Work laptop' } });

  t.match(await api(server, 'DELETE', `/api/auth/mfa/webauthn/${passkey.id}/`, { token: alice.pair.access_token, body: { password: 'wrong password' } }), { status: 401 }, 'removal needs re-authentication');
  t.equal((await api(server, 'DELETE', `/api/auth/mfa/webauthn/${passkey.id}/`, { token: alice.pair.access_token, body: { password: TEST_PASSWORD } })).status, 204);
  t.match((await api<{ items: Array<{ id: string }> }>(server, 'GET', '/api/auth/mfa/webauthn/', { token: alice.pair.access_token })).body.items, [{ id: second.id }]);
  t.match(await passwordless(env, aliceKey.assert(await loginOptions(api, server))), { status: 401 }, 'a removed passkey signs in no more');

  const admin = await serviceAccount(server, ['admin']);
  t.equal((await admin.api('POST', `/api/auth/users/${alice.user.id}/mfa/reset/`)).status, 200);
  t.same(await server.app.keryu.services.passkeys.list(alice.user.id), [], 'an MFA reset removes passkeys');
});

t.test('the relying party is checked at start-up', async (t) => {
  const base = { NODE_ENV: 'test', ISSUER: 'https://login.example.com/oidc' };
  t.match(parseConfig(base).webauthn, { rpId: 'login.example.com', origins: ['https://login.example.com'], rpName: 'keryu-auth' }, 'defaults from the issuer');
  t.match(parseConfig({ ...base, WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://login.example.com,https://app.example.com' }).webauthn, { rpId: 'example.com' }, 'a registrable suffix of every origin');
  t.throws(() => parseConfig({ ...base, WEBAUTHN_RP_ID: 'example.org' }), /WEBAUTHN_RP_ID: "example.org" must be the host of https:\/\/login.example.com or a registrable suffix of it/, 'not a suffix: a clear start-up error');
  t.throws(() => parseConfig({ ...base, WEBAUTHN_RP_ID: 'ample.com' }), /must be the host of/, 'a suffix of the string is not a domain suffix');
  t.throws(() => parseConfig({ ...base, WEBAUTHN_RP_ID: 'com' }), /not a registrable domain/, 'a bare top-level name');
  t.throws(() => parseConfig({ ...base, WEBAUTHN_ORIGINS: 'http://login.example.com' }), /must use https/, 'plain http outside localhost');
  t.match(parseConfig({ NODE_ENV: 'test', ISSUER: 'http://localhost:3000/oidc' }).webauthn, { rpId: 'localhost', origins: ['http://localhost:3000'] }, 'http://localhost is a secure context');
});
