/**
 * A completed password reset clears the identifier's lock: proving the mailbox is stronger than any wrong
 * guess, and otherwise one wrong password per lock period (from anyone) keeps the user out of every new
 * device even after they reset their password.
 */
import t from 'tap';
import { api, seedAuthUser } from '../helpers/auth.js';
import { loginAs, mailbox, startMfaServer } from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const NEW_PASSWORD = 'purple elephants juggle quietly';

t.test('the lock ends with a completed reset, not with a reset request', async (t) => {
  const { server, smtp } = await startMfaServer(t, { LOGIN_LOCK_AFTER: '5', LOGIN_DELAY_AFTER: '5000' });
  await seedAuthUser(server);
  const box = mailbox(smtp, 'alice@example.com');
  for (let i = 0; i < 5; i++) t.equal((await loginAs(server, 'alice@example.com', { password: 'a wrong guess' })).status, 401);
  t.match(await loginAs(server, 'alice@example.com'), { status: 429, body: { error: 'too_many_attempts' } }, 'locked');

  t.equal((await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'alice@example.com' } })).status, 202);
  const token = decodeURIComponent(/password\/reset\?token=([A-Za-z0-9_%-]+)/.exec((await box.next()).text)?.[1] ?? '');
  t.match(await loginAs(server, 'alice@example.com'), { status: 429 }, 'a reset request alone changes nothing');
  t.equal((await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token, new_password: NEW_PASSWORD } })).status, 204);

  t.match(await loginAs(server, 'alice@example.com', { password: TEST_PASSWORD }), { status: 401 }, 'the old password is gone (and the lock with it: 401, not 429)');
  t.equal((await loginAs(server, 'alice@example.com', { password: NEW_PASSWORD })).status, 200, 'the new password signs in at once');
});
