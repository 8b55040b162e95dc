/**
 * Password reset mail bombing: emails to one account are limited per account (whatever the requests'
 * addresses), every request answers the same 202 (known, unknown or over the limit), and a new request
 * does not void the link the user is about to open.
 */
import { randomInt } from 'node:crypto';
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { api, manualClock, NO_RATE_LIMITS, seedAuthUser } from '../helpers/auth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { startSmtpServer } from '../helpers/smtp.js';

const freshIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
const requestReset = (server: TestServer, email: string) =>
  api(server, 'POST', '/api/auth/password/reset/', { body: { email }, headers: { 'x-forwarded-for': freshIp() } });

function tokenIn(text: string): string {
  const match = /\/password\/reset\?token=([A-Za-z0-9_%-]+)/.exec(text);
  if (!match?.[1]) throw new Error(`no link in mail:\n${text}`);
  return decodeURIComponent(match[1]);
}

/**
 * Waits until `requests` reset requests have been handled (each records one password.reset_requested event
 * once its background work is done, after any email was accepted) and counts the outcomes.
 */
async function handled(server: TestServer, requests: number): Promise<{ sent: number; refused: number }> {
  for (;;) {
    await server.app.keryu.services.audit.flush();
    const events = (await server.app.keryu.database.db.select().from(auditEvents)).filter((e) => e.type === 'password.reset_requested' && e.subjectId !== null);
    if (events.length >= requests) {
      return {
        sent: events.filter((e) => e.outcome === 'success').length,
        refused: events.filter((e) => (e.details as { reason?: string }).reason === 'rate_limited').length,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('reset emails are limited per account, answered 202 alike', async (t) => {
  const smtp = await startSmtpServer();
  t.teardown(() => smtp.close());
  const clock = manualClock();
  const server = await startServer({
    env: { ...NO_RATE_LIMITS, TRUST_PROXY: 'true', SMTP_URL: smtp.url, PASSWORD_RESET_RESEND_INTERVAL: '60', PASSWORD_RESET_SENDS_PER_HOUR: '3' },
    clock,
  });
  t.teardown(() => server.close());
  await seedAuthUser(server);

  const first = await requestReset(server, 'alice@example.com');
  t.same(await handled(server, 1), { sent: 1, refused: 0 });
  const burst = await requestReset(server, 'alice@example.com');
  t.same(await handled(server, 2), { sent: 1, refused: 1 }, 'a second request within the interval sends nothing');
  const unknown = await requestReset(server, 'nobody@example.com');
  t.equal(first.status, 202);
  for (const answer of [burst, unknown]) t.same({ status: answer.status, body: answer.body }, { status: first.status, body: first.body }, 'the same 202 as a sent link');

  // One at a time: the clock moves only once a request's background work is done.
  for (let i = 0; i < 3; i++) {
    clock.advance(61);
    const answer = await requestReset(server, 'alice@example.com');
    t.equal(answer.status, 202);
    await handled(server, 3 + i);
  }
  t.same(await handled(server, 5), { sent: 3, refused: 2 }, 'three emails in the hour, though every request came from a new address');
  t.equal(smtp.messages.length, 3);

  clock.advance(3600);
  await requestReset(server, 'alice@example.com');
  t.same(await handled(server, 6), { sent: 4, refused: 2 }, 'the next hour sends again');
});

t.test('a new request does not void the link the user is about to open', async (t) => {
  const smtp = await startSmtpServer();
  t.teardown(() => smtp.close());
  const clock = manualClock();
  const server = await startServer({ env: { ...NO_RATE_LIMITS, SMTP_URL: smtp.url }, clock });
  t.teardown(() => server.close());
  await seedAuthUser(server);

  await requestReset(server, 'alice@example.com');
  const mine = tokenIn((await smtp.waitFor(1)).text);
  await handled(server, 1);
  clock.advance(61);
  await requestReset(server, 'alice@example.com');
  const attackerTriggered = tokenIn((await smtp.waitFor(2)).text);
  t.equal((await fetch(`${server.origin}/password/reset?token=${encodeURIComponent(mine)}`)).status, 200, 'the first link still opens');
  t.equal((await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token: mine, new_password: 'purple elephants juggle quietly' } })).status, 204, 'and resets');
  t.match(
    await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token: attackerTriggered, new_password: 'another fine passphrase here' } }),
    { status: 400, body: { error: 'invalid_reset_token' } },
    'a completed reset voids the other links',
  );
});
