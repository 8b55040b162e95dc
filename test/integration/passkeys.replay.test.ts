/**
 * Hostile passkey assertions and registrations: a replayed assertion, a challenge used twice or after
 * expiry, another user's or another login's challenge, a challenge of another purpose or device, a wrong
 * origin or RP id, user verification missing, a bogus signature, and a signature counter going backwards
 * (refused, audited, alerted).
 */
import t, { type Test } from 'tap';
import { api } from '../helpers/auth.js';
import { auditLog, challengeFor, isPair, seedWithSession, startMfaServer, type LoginAnswer } from '../helpers/mfa.js';
import { loginOptions, registerPasskey, SoftAuthenticator, type CreationOptions } from '../helpers/webauthn.js';

type Env = Awaited<ReturnType<typeof startMfaServer>>;
const passwordless = (env: Env, response: unknown, extra: Record<string, unknown> = {}) => api<LoginAnswer>(env.server, 'POST', '/api/auth/login/webauthn/', { body: { response, ...extra } });
const secondFactor = (env: Env, challengeId: string, response: unknown) => api<LoginAnswer>(env.server, 'POST', '/api/auth/login/webauthn/', { body: { challenge_id: challengeId, response } });

async function withPasskey(t: Test, options: { uv?: boolean; backupEligible?: boolean; backedUp?: boolean; counter?: number } = {}, serverEnv: Record<string, string> = {}) {
  const env = await startMfaServer(t, serverEnv);
  const alice = await seedWithSession(env.server, 'alice@example.com');
  const key = new SoftAuthenticator({ origin: env.server.origin, ...options });
  await registerPasskey(api, env.server, alice.pair.access_token, key);
  return { env, alice, key };
}

t.test('an assertion is good once: replayed, or its challenge used twice, it is refused', async (t) => {
  const { env, key } = await withPasskey(t, { counter: 1 });
  const options = await loginOptions(api, env.server);
  const assertion = key.assert(options);
  t.ok(isPair((await passwordless(env, assertion)).body), 'first use signs in');
  t.match(await passwordless(env, assertion), { status: 400, body: { error: 'challenge_consumed' } }, 'the same assertion again: refused');
  t.match(await passwordless(env, key.assert(options)), { status: 400, body: { error: 'challenge_consumed' } }, 'a fresh signature over the used challenge: refused');

  // As a second factor: the step's assertion replayed on the next login.
  const first = await challengeFor(env.server, 'alice@example.com');
  const step = key.assert(await loginOptions(api, env.server, { challenge_id: first.challenge_id }));
  t.ok(isPair((await secondFactor(env, first.challenge_id, step)).body));
  const second = await challengeFor(env.server, 'alice@example.com');
  t.match(await secondFactor(env, second.challenge_id, step), { status: 401, body: { error: 'invalid_code' } }, 'a second factor\'s assertion does not pass another login');
});

t.test('a challenge expires after 5 minutes', async (t) => {
  const { env, key } = await withPasskey(t);
  const options = await loginOptions(api, env.server);
  env.clock.advance(301);
  t.match(await passwordless(env, key.assert(options)), { status: 400, body: { error: 'challenge_expired' } });
  t.ok(isPair((await passwordless(env, key.assert(await loginOptions(api, env.server)))).body), 'new options work');
});

t.test('a challenge is bound to its user, login, device and purpose', async (t) => {
  const { env, alice, key } = await withPasskey(t);
  const bob = await seedWithSession(env.server, 'bob@example.com');
  const bobKey = new SoftAuthenticator({ origin: env.server.origin });
  await registerPasskey(api, env.server, bob.pair.access_token, bobKey);

  const aliceLogin = await challengeFor(env.server, 'alice@example.com');
  const bobLogin = await challengeFor(env.server, 'bob@example.com');
  const bobOptions = await loginOptions(api, env.server, { challenge_id: bobLogin.challenge_id });
  t.match(await secondFactor(env, aliceLogin.challenge_id, key.assert(bobOptions)), { status: 401 }, 'alice\'s passkey over bob\'s login challenge: refused at alice\'s login');
  t.match(await secondFactor(env, bobLogin.challenge_id, key.assert(bobOptions)), { status: 401 }, 'alice\'s passkey at bob\'s login: refused');
  t.ok(isPair((await secondFactor(env, aliceLogin.challenge_id, key.assert(await loginOptions(api, env.server, { challenge_id: aliceLogin.challenge_id })))).body), 'alice\'s own challenge works');

  const forPhone = await loginOptions(api, env.server, { device_id: 'phone' });
  t.match(await passwordless(env, key.assert(forPhone), { device_id: 'laptop' }), { status: 400, body: { error: 'invalid_challenge' } }, 'options for one device, used by another');

  const registration = await api<CreationOptions>(env.server, 'POST', '/api/auth/mfa/webauthn/options/', { token: bob.pair.access_token });
  t.match(await api(env.server, 'POST', '/api/auth/mfa/webauthn/', { token: alice.pair.access_token, body: { response: new SoftAuthenticator({ origin: env.server.origin }).register(registration.body) } }), { status: 400, body: { reason: 'unknown_challenge' } }, 'bob\'s registration options used by alice\'s session');
  t.match(await passwordless(env, key.assert({ challenge: registration.body.challenge })), { status: 400, body: { error: 'invalid_challenge' } }, 'a registration challenge is no sign-in challenge');
  t.equal((await server(env).passkeys.list(alice.user.id)).length, 1, 'nothing was registered');
});

const server = (env: Env) => env.server.app.keryu.services;

t.test('origin, RP id, user verification and signature are checked', async (t) => {
  // More refusals than the progressive delay allows (that limit has its own test: passkeys.lockout.test.ts).
  const { env, key } = await withPasskey(t, {}, { LOGIN_DELAY_AFTER: '100', LOGIN_LOCK_AFTER: '100' });
  const cases: Array<[string, Parameters<SoftAuthenticator['assert']>[1]]> = [
    ['a wrong origin', { origin: 'http://127.0.0.1:1' }],
    ['a phishing origin', { origin: 'https://login.example.net' }],
    ['a wrong RP id', { rpId: 'example.net' }],
    ['user verification missing (passwordless)', { uv: false }],
    ['a bogus signature', { bogusSignature: true }],
    ['a wrong ceremony type', { type: 'webauthn.create' }],
    ['another user handle', { userHandle: Buffer.alloc(32, 1).toString('base64url') }],
    ['no user handle', { userHandle: null }],
  ];
  for (const [what, bend] of cases) {
    t.match(await passwordless(env, key.assert(await loginOptions(api, env.server), bend)), { status: 401, body: { error: 'invalid_credentials' } }, `${what}: refused`);
  }
  const events = (await auditLog(env.server)).filter((e) => e.type === 'login' && e.outcome === 'failure');
  t.equal(events.length, cases.length, 'every refusal is audited');
  t.ok(isPair((await passwordless(env, key.assert(await loginOptions(api, env.server)))).body), 'the genuine assertion still works');
});

t.test('registration refuses a wrong origin or RP id, and a passkey registered twice', async (t) => {
  const env = await startMfaServer(t);
  const { pair } = await seedWithSession(env.server, 'alice@example.com');
  const key = new SoftAuthenticator({ origin: env.server.origin });
  const options = () => api<CreationOptions>(env.server, 'POST', '/api/auth/mfa/webauthn/options/', { token: pair.access_token }).then((r) => r.body);
  const register = async (response: unknown) => api(env.server, 'POST', '/api/auth/mfa/webauthn/', { token: pair.access_token, body: { response } });
  t.match(await register(key.register(await options(), { origin: 'https://evil.example' })), { status: 400 }, 'wrong origin');
  t.match(await register(key.register(await options(), { rpId: 'evil.example' })), { status: 400 }, 'wrong RP id');
  const used = await options();
  t.equal((await register(key.register(used))).status, 201);
  t.match(await register(key.register(used)), { status: 400, body: { reason: 'challenge_consumed' } }, 'a registration challenge is single use');
  t.match(await register(key.register(await options())), { status: 409 }, 'the same credential again');
});

t.test('a signature counter going backwards is refused, audited and alerted', async (t) => {
  const { env, alice, key } = await withPasskey(t, { counter: 10 });
  t.ok(isPair((await passwordless(env, key.assert(await loginOptions(api, env.server)))).body), 'counter 11: accepted');
  const clone = await passwordless(env, key.assert(await loginOptions(api, env.server), { counter: 5 }));
  t.match(clone, { status: 401, body: { error: 'invalid_credentials' } }, 'counter 5 after 11: refused');
  const events = await auditLog(env.server);
  t.match(events.filter((e) => e.type === 'mfa.passkey_counter_regressed'), [{ outcome: 'failure', subjectId: alice.user.id, details: { stored_counter: 11, presented_counter: 5 } }], 'audited');
  const raised = (await server(env).alerts.evaluate()).raised;
  t.same(raised.map((a) => a.type), ['passkey_clone_suspected'], 'alerted');
  t.match(await passwordless(env, key.assert(await loginOptions(api, env.server), { counter: 11 })), { status: 401 }, 'the same counter again: refused');
  t.ok(isPair((await passwordless(env, key.assert(await loginOptions(api, env.server)))).body), 'the genuine authenticator (counter 12) still signs in');
});

t.test('an authenticator without a counter (always 0) keeps working', async (t) => {
  const { env, key } = await withPasskey(t);
  for (let i = 0; i < 2; i++) t.ok(isPair((await passwordless(env, key.assert(await loginOptions(api, env.server)))).body), `sign-in ${i + 1}`);
});
