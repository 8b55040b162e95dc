/**
 * The browser form's sign-in survives a network change like the API's: the code step may be passed from
 * another address (audited as `login.ip_changed`), unless SESSION_IP_BINDING=strict.
 */
import { and, eq } from 'drizzle-orm';
import t, { type Test } from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { manualClock, NO_RATE_LIMITS } from '../helpers/auth.js';
import { enrolTotpFor } from '../helpers/mfa.js';
import { authorizationRequest, Browser, discover, hiddenField, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const form = (browser: Browser, url: string, fields: Record<string, string>, ip: string) =>
  browser.fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip }, body: new URLSearchParams(fields).toString() });

async function signInFromWifi(t: Test, env: Record<string, string>) {
  const clock = manualClock();
  const server = await startServer({ env: { ...NO_RATE_LIMITS, TRUST_PROXY: 'true', ...env }, clock });
  t.teardown(() => server.close());
  const user = await seedUser(server, 'alice@example.com');
  const totp = await enrolTotpFor(server, user, clock);
  const config = await discover(server, await seedClient(server));
  const browser = new Browser();
  const request = await authorizationRequest(config, { scope: 'openid' });
  let url = request.url.toString();
  let res = await browser.fetch(url, { headers: { 'x-forwarded-for': '203.0.113.7' } });
  while (res.status >= 300 && res.status < 400) {
    url = new URL(res.headers.get('location')!, url).toString();
    res = await browser.fetch(url, { headers: { 'x-forwarded-for': '203.0.113.7' } });
  }
  const uid = new URL(url).pathname.split('/').pop()!;
  const csrf = hiddenField(await res.text(), 'csrf');
  const password = await form(browser, `${server.origin}/interaction/${uid}/login`, { csrf, email: 'alice@example.com', password: TEST_PASSWORD }, '203.0.113.7');
  t.equal(password.status, 303, 'the password step passes on Wi-Fi');
  const events = async () => {
    await server.app.keryu.services.audit.flush();
    return server.db.database.db.select().from(auditEvents).where(and(eq(auditEvents.subjectId, user.id)));
  };
  return { server, browser, uid, csrf, totp, events };
}

t.test('the code step from mobile data completes the sign-in, audited', async (t) => {
  const { server, browser, uid, csrf, totp, events } = await signInFromWifi(t, {});
  const res = await form(browser, `${server.origin}/interaction/${uid}/verify`, { csrf, method: 'totp', code: await totp() }, '198.51.100.20');
  t.equal(res.status, 303, 'accepted from another network');
  t.notMatch(res.headers.get('location') ?? '', REDIRECT_URI, 'on to the rest of the authorization');
  const all = await events();
  t.ok(all.some((e) => e.type === 'login.ip_changed' && (e.details as { channel?: string }).channel === 'form'), 'audited as login.ip_changed');
  t.ok(all.some((e) => e.type === 'login.challenge_passed'), 'the step passed');
});

t.test('SESSION_IP_BINDING=strict: the code step only from where the sign-in started', async (t) => {
  const { server, browser, uid, csrf, totp, events } = await signInFromWifi(t, { SESSION_IP_BINDING: 'strict' });
  const res = await form(browser, `${server.origin}/interaction/${uid}/verify`, { csrf, method: 'totp', code: await totp() }, '198.51.100.20');
  t.not(res.status, 303, 'refused from another network');
  t.notOk((await events()).some((e) => e.type === 'login.challenge_passed'), 'nothing passed');
});
