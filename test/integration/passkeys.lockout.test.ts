/**
 * Passkey sign-ins go through the brute-force counters a password does: failures count per account (the
 * passkey owner's identifier, shared with password failures) and per client IP (unknown credentials too),
 * and a passkey as the second factor uses up the login challenge's attempts like a wrong code.
 */
import t from 'tap';
import { api } from '../helpers/auth.js';
import { challengeFor, from, isPair, loginAs, seedWithSession, startMfaServer, type LoginAnswer } from '../helpers/mfa.js';
import { loginOptions, registerPasskey, SoftAuthenticator } from '../helpers/webauthn.js';

type Env = Awaited<ReturnType<typeof startMfaServer>>;
const passwordless = (env: Env, response: unknown, headers: Record<string, string> = {}) => api<LoginAnswer>(env.server, 'POST', '/api/auth/login/webauthn/', { body: { response }, headers });

t.test('per account: failed passkey sign-ins lock the account, for passkeys and passwords alike', async (t) => {
  const env = await startMfaServer(t, { LOGIN_DELAY_AFTER: '100', LOGIN_LOCK_AFTER: '3' });
  const { pair } = await seedWithSession(env.server, 'alice@example.com');
  const key = new SoftAuthenticator({ origin: env.server.origin });
  await registerPasskey(api, env.server, pair.access_token, key);
  for (let i = 0; i < 3; i++) {
    t.match(await passwordless(env, key.assert(await loginOptions(api, env.server), { bogusSignature: true }), from(`198.51.100.${i + 1}`)), { status: 401 }, `bogus assertion ${i + 1} from another address`);
  }
  t.match(await passwordless(env, key.assert(await loginOptions(api, env.server)), from('198.51.100.9')), { status: 429, body: { error: 'too_many_attempts' } }, 'locked: even the genuine passkey waits');
  t.match(await loginAs(env.server, 'alice@example.com', {}, from('198.51.100.9')), { status: 429 }, 'and so does the password');
});

t.test('per IP: failures for passkeys nobody has still count against the address', async (t) => {
  const env = await startMfaServer(t, { LOGIN_IP_MAX_FAILURES: '3' });
  const { pair } = await seedWithSession(env.server, 'alice@example.com');
  const key = new SoftAuthenticator({ origin: env.server.origin });
  await registerPasskey(api, env.server, pair.access_token, key);
  for (let i = 0; i < 3; i++) {
    const stranger = new SoftAuthenticator({ origin: env.server.origin });
    t.match(await passwordless(env, stranger.assert(await loginOptions(api, env.server)), from('203.0.113.7')), { status: 401 }, `unknown passkey ${i + 1}`);
  }
  t.match(await passwordless(env, key.assert(await loginOptions(api, env.server)), from('203.0.113.7')), { status: 429 }, 'that address is refused, even with a real passkey');
  t.ok(isPair((await passwordless(env, key.assert(await loginOptions(api, env.server)), from('192.0.2.1'))).body), 'another address is not');
});

t.test('second factor: refused assertions use up the login challenge like wrong codes', async (t) => {
  const env = await startMfaServer(t, { LOGIN_DELAY_AFTER: '100', LOGIN_LOCK_AFTER: '100' });
  const { pair } = await seedWithSession(env.server, 'alice@example.com');
  const key = new SoftAuthenticator({ origin: env.server.origin });
  await registerPasskey(api, env.server, pair.access_token, key);
  const challenge = await challengeFor(env.server, 'alice@example.com');
  const step = (bend: Parameters<SoftAuthenticator['assert']>[1]) => loginOptions(api, env.server, { challenge_id: challenge.challenge_id }).then((o) => api<LoginAnswer>(env.server, 'POST', '/api/auth/login/webauthn/', { body: { challenge_id: challenge.challenge_id, response: key.assert(o, bend) } }));
  for (let left = 4; left >= 0; left--) t.match(await step({ bogusSignature: true }), { status: 401, body: { error: 'invalid_code', attempts_left: left } });
  t.match(await api(env.server, 'POST', '/api/auth/login/webauthn/options/', { body: { challenge_id: challenge.challenge_id } }), { status: 429, body: { error: 'too_many_attempts' } }, 'the challenge is spent: no more options, sign in again');
});
