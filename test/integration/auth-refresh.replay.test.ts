/**
 * Refresh token rotation under replay: retry safety (same device, within the window, successor unused →
 * the very same pair), reuse detection (the family is revoked, audited, the user is emailed), and
 * concurrent refreshes of one token on one server and across two server processes (exactly one pair).
 */
import t from 'tap';
import { eq } from 'drizzle-orm';
import { auditEvents, authRefreshTokens } from '../../src/db/schema/index.js';
import { createTokenDigest, deriveKey } from '../../src/lib/crypto.js';
import { api, login, manualClock, NO_RATE_LIMITS, seedAuthUser, type Pair } from '../helpers/auth.js';
import { createTestDatabase, onPostgres } from '../helpers/db.js';
import { startServerProcess } from '../helpers/process.js';
import { startServer } from '../helpers/server.js';
import { startSmtpServer } from '../helpers/smtp.js';

const refresh = (server: { origin: string }, refreshToken: string, deviceId?: string) =>
  api<Pair & { error?: string }>(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: refreshToken, ...(deviceId ? { device_id: deviceId } : {}) } });

t.test('a retry within the window gets the very same pair', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: NO_RATE_LIMITS, clock });
  t.teardown(() => server.close());
  await seedAuthUser(server);

  const first = await login(server);
  const r2 = await refresh(server, first.refresh_token);
  t.equal(r2.status, 200);
  clock.advance(10);
  const retry = await refresh(server, first.refresh_token);
  t.equal(retry.status, 200, 'the lost response is answered again');
  t.equal(retry.body.refresh_token, r2.body.refresh_token, 'same refresh token');
  t.equal(retry.body.access_token, r2.body.access_token, 'same access token');
  t.equal(retry.body.expires_in, 590, 'with the time it has left');
  t.equal((await refresh(server, r2.body.refresh_token)).status, 200, 'the pair is valid');
  const [stored] = await server.app.keryu.database.db.select().from(authRefreshTokens).where(eq(authRefreshTokens.tokenHash, createTokenDigest(deriveKey(server.config.secret, 'token-digest')).stored(first.refresh_token)));
  t.equal(stored?.retryResponse, null, 'once the successor is used, the kept answer is gone');
  t.notOk(JSON.stringify(await server.app.keryu.database.db.select().from(authRefreshTokens)).includes(r2.body.refresh_token), 'never a raw token at rest');

  // Device-bound session: the retry must come from the same device.
  const bound = await login(server, { device_id: 'phone-1' });
  const next = await refresh(server, bound.refresh_token, 'phone-1');
  t.equal((await refresh(server, bound.refresh_token, 'phone-1')).body.refresh_token, next.body.refresh_token, 'same device: same pair');

  const stranger = await login(server, { email: 'alice@example.com' });
  const strangerNext = await refresh(server, stranger.refresh_token);
  t.match(await refresh(server, stranger.refresh_token, 'another-device'), { status: 401, body: { error: 'invalid_token' } }, 'another device: reuse');
  t.equal((await refresh(server, strangerNext.body.refresh_token)).status, 401, 'and the family is revoked');

  const late = await login(server);
  const lateNext = await refresh(server, late.refresh_token);
  clock.advance(31);
  t.match(await refresh(server, late.refresh_token), { status: 401, body: { error: 'invalid_token' } }, 'after the window: reuse');
  t.equal((await refresh(server, lateNext.body.refresh_token)).status, 401, 'family revoked');
});

t.test('R1 → R2 → R3, then R1: the family is revoked, R3 is dead, the user is told', async (t) => {
  const smtp = await startSmtpServer();
  t.teardown(() => smtp.close());
  const server = await startServer({ env: { ...NO_RATE_LIMITS, SMTP_URL: smtp.url } });
  t.teardown(() => server.close());
  await seedAuthUser(server);

  const r1 = await login(server);
  const r2 = await refresh(server, r1.refresh_token);
  const r3 = await refresh(server, r2.body.refresh_token);
  t.equal(r3.status, 200);
  t.match(await refresh(server, r1.refresh_token), { status: 401, body: { error: 'invalid_token' } }, 'R1 again: its successor was used, so this is reuse');
  t.match(await refresh(server, r3.body.refresh_token), { status: 401, body: { error: 'invalid_token' } }, 'R3 is dead');
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: r3.body.access_token })).status, 401, 'and so is its access token');

  const mail = await smtp.waitFor(1);
  t.same(mail.to, ['alice@example.com'], 'the user is emailed');
  t.match(mail.text, /used twice/);

  await server.app.keryu.services.audit.flush();
  const events = await server.app.keryu.database.db.select().from(auditEvents);
  const reuse = events.find((e) => e.type === 'token.reuse_detected');
  t.equal(reuse?.subjectId, r1.session_id, 'token.reuse_detected names the session');
  t.ok(events.some((e) => e.type === 'session.revoked' && (e.details as { reason?: string }).reason === 'refresh_token_reuse'));
  t.notOk(JSON.stringify(events).includes(r1.refresh_token), 'no token value in the audit log');
});

t.test('REFRESH_RETRY_WINDOW=0: any second presentation is reuse', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, REFRESH_RETRY_WINDOW: '0' } });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const r1 = await login(server);
  const r2 = await refresh(server, r1.refresh_token);
  t.equal((await refresh(server, r1.refresh_token)).status, 401);
  t.equal((await refresh(server, r2.body.refresh_token)).status, 401, 'family revoked');
});

t.test('concurrent refreshes of one token on one server mint one pair', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const r1 = await login(server);
  const answers = await Promise.all(Array.from({ length: 10 }, () => refresh(server, r1.refresh_token)));
  const ok = answers.filter((a) => a.status === 200);
  t.equal(ok.length, 10, 'every request is answered (retries of one rotation)');
  t.equal(new Set(ok.map((a) => a.body.refresh_token)).size, 1, 'exactly one new pair');
  t.equal((await refresh(server, ok[0]!.body.refresh_token)).status, 200, 'and it works');
});

t.test('concurrent refreshes from two server processes mint exactly one pair', { skip: onPostgres ? false : 'needs PostgreSQL (two processes share one database)' }, async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const seeder = await startServer({ db, env: NO_RATE_LIMITS });
  t.teardown(() => seeder.close());
  await seedAuthUser(seeder);
  const issuer = seeder.issuer;
  const env = { ...NO_RATE_LIMITS };
  const a = await startServerProcess({ databaseUrl: db.url!, issuer, env });
  t.teardown(() => a.stop());
  const b = await startServerProcess({ databaseUrl: db.url!, issuer, env });
  t.teardown(() => b.stop());

  for (let round = 0; round < 3; round++) {
    const r1 = await login(a);
    const answers = await Promise.all(Array.from({ length: 8 }, (_v, i) => refresh(i % 2 ? a : b, r1.refresh_token)));
    const ok = answers.filter((x) => x.status === 200);
    t.ok(ok.length >= 1, `round ${round}: at least one answer`);
    t.equal(new Set(ok.map((x) => x.body.refresh_token)).size, 1, `round ${round}: exactly one new pair across both processes`);
    t.equal((await refresh(b, ok[0]!.body.refresh_token)).status, 200, 'the pair is valid on the other replica');
  }

  // Without the retry window the loser is reuse, so the family dies: still never two valid pairs.
  const strictEnv = { ...NO_RATE_LIMITS, REFRESH_RETRY_WINDOW: '0' };
  const c = await startServerProcess({ databaseUrl: db.url!, issuer, env: strictEnv });
  t.teardown(() => c.stop());
  const d = await startServerProcess({ databaseUrl: db.url!, issuer, env: strictEnv });
  t.teardown(() => d.stop());
  const r1 = await login(c);
  const answers = await Promise.all([refresh(c, r1.refresh_token), refresh(d, r1.refresh_token)]);
  const valid = [];
  for (const x of answers.filter((y) => y.status === 200)) if ((await refresh(c, x.body.refresh_token)).status === 200) valid.push(x);
  t.ok(valid.length <= 1, 'at most one pair stays valid');
});
