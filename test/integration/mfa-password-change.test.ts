/** A password change or reset ends the sign-ins still waiting for a step: they passed the old password. */
import t from 'tap';
import { api, seedAuthUser } from '../helpers/auth.js';
import { challengeFor, codeIn, enrolTotp, mailbox, seedWithSession, startMfaServer, totpAt, verify } from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const NEW_PASSWORD = 'a different passphrase entirely';

t.test('changing the password ends a sign-in in progress', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);
  const pending = await challengeFor(server, 'alice@example.com', { device_id: 'thief' });

  const changed = await api(server, 'POST', '/api/auth/password/change/', { token: pair.access_token, body: { current_password: TEST_PASSWORD, new_password: NEW_PASSWORD } });
  t.equal(changed.status, 204);
  const late = await verify(server, { challenge_id: pending.challenge_id, method: 'totp', code: await totpAt(secret, clock), device_id: 'thief' });
  t.match(late, { status: 400, body: { error: 'challenge_consumed' } }, 'the old password\'s sign-in cannot complete');
});

t.test('resetting the password ends a sign-in in progress', async (t) => {
  const { server, smtp } = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  await seedAuthUser(server, 'bob@example.com');
  const inbox = mailbox(smtp, 'bob@example.com');
  const pending = await challengeFor(server, 'bob@example.com', { device_id: 'thief' });
  t.equal(pending.reason, 'new_device');
  const code = codeIn(await inbox.next());
  t.equal((await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'bob@example.com' } })).status, 202);
  const token = new URL(/https?:\/\/\S+\/password\/reset\?token=\S+/.exec((await inbox.next()).text)![0]).searchParams.get('token')!;
  t.equal((await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token, new_password: NEW_PASSWORD } })).status, 204);
  const late = await verify(server, { challenge_id: pending.challenge_id, method: 'email', code, device_id: 'thief' });
  t.match(late, { status: 400, body: { error: 'challenge_consumed' } }, 'the emailed code no longer completes the old password\'s sign-in');
});
