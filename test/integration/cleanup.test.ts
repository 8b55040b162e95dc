import t from 'tap';
import { eq } from 'drizzle-orm';
import { oidcPayloads, oidcRevokedGrants, signingKeys } from '../../src/db/schema/index.js';
import { CLEANUP_BATCH_SIZE, runCleanup } from '../../src/jobs/cleanup.js';
import { createTestDatabase } from '../helpers/db.js';

t.test('cleanup removes only what has expired, in batches, and is safe to run concurrently', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const { db: d } = db.database;
  const past = new Date(Date.now() - 60_000);
  const future = new Date(Date.now() + 60_000);
  const expired = CLEANUP_BATCH_SIZE + 5;
  await d.insert(oidcPayloads).values(Array.from({ length: expired }, (_, i) => ({ model: 'AccessToken', id: `old-${i}`, payload: {}, expiresAt: past })));
  await d.insert(oidcPayloads).values([
    { model: 'AccessToken', id: 'live', payload: {}, expiresAt: future },
    { model: 'Client', id: 'no-expiry', payload: {}, expiresAt: null },
  ]);
  await d.insert(oidcRevokedGrants).values([
    { grantId: 'old-grant', expiresAt: past },
    { grantId: 'live-grant', expiresAt: future },
  ]);
  await d.insert(signingKeys).values([
    { kid: 'retired', alg: 'ES256', publicJwk: {}, privateJwkEncrypted: 'x', activatesAt: past, retiresAt: past },
    { kid: 'current', alg: 'ES256', publicJwk: {}, privateJwkEncrypted: 'x', activatesAt: past, retiresAt: null },
  ]);

  const results = await Promise.all([runCleanup(d), runCleanup(d)]);
  const total = results.reduce((n, r) => n + r.payloads, 0);
  t.equal(total, expired, 'every expired row removed exactly once, across batches');
  t.equal(results.reduce((n, r) => n + r.tombstones, 0), 1);
  t.equal(results.reduce((n, r) => n + r.keys, 0), 1);

  t.equal((await d.select().from(oidcPayloads)).length, 2, 'unexpired rows and rows without expiry stay');
  t.equal((await d.select().from(oidcRevokedGrants).where(eq(oidcRevokedGrants.grantId, 'live-grant'))).length, 1);
  t.same((await d.select({ kid: signingKeys.kid }).from(signingKeys)).map((r) => r.kid), ['current']);

  const again = await runCleanup(d);
  t.same({ payloads: again.payloads, tombstones: again.tombstones, keys: again.keys }, { payloads: 0, tombstones: 0, keys: 0 }, 'rerunning is a no-op');
});

t.test('cleanup of the auth API tables: expired secrets, retry answers past their window, old sessions and counters', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const { db: d } = db.database;
  const { authRefreshTokens, authTokens, loginChallenges, loginFailures, passwordResetTokens, users } = await import('../../src/db/schema/index.js');
  const now = Date.now();
  const at = (seconds: number) => new Date(now + seconds * 1000);
  const [user] = await d.insert(users).values({ email: 'c@example.com' }).returning();
  const uid = user!.id;
  const [live, old] = await d
    .insert(authTokens)
    .values([
      { userId: uid, kind: 'session', expiresAt: at(3600) },
      { userId: uid, kind: 'session', expiresAt: at(-8 * 86400) },
    ])
    .returning();
  await d.insert(authRefreshTokens).values([
    { sessionId: live!.id, tokenHash: 'a', expiresAt: at(3600), retryResponse: 'sealed-old', retryUntil: at(-1) },
    { sessionId: live!.id, tokenHash: 'b', expiresAt: at(3600), retryResponse: 'sealed-live', retryUntil: at(20) },
    { sessionId: live!.id, tokenHash: 'c', expiresAt: at(-1) },
    { sessionId: old!.id, tokenHash: 'd', expiresAt: at(3600) },
  ]);
  await d.insert(loginChallenges).values([
    { challengeHash: 'x', userId: uid, methods: ['t'], expiresAt: at(-1) },
    { challengeHash: 'y', userId: uid, methods: ['t'], expiresAt: at(60) },
  ]);
  await d.insert(passwordResetTokens).values([
    { userId: uid, tokenHash: 'p', expiresAt: at(-1) },
    { userId: uid, tokenHash: 'q', expiresAt: at(60) },
  ]);
  await d.insert(loginFailures).values([
    { key: 'id:stale', failures: 3, firstFailureAt: at(-9 * 86400), lastFailureAt: at(-8 * 86400) },
    { key: 'id:recent', failures: 3, firstFailureAt: at(-60), lastFailureAt: at(-60) },
  ]);

  const result = await runCleanup(d, new Date(now));
  t.match(result, { ran: true, sessions: 1, secrets: 3, retryAnswers: 1, loginFailures: 1 });
  const tokens = await d.select().from(authRefreshTokens);
  t.same(tokens.map((r) => [r.tokenHash, r.retryResponse]).sort(), [['a', null], ['b', 'sealed-live']], 'expired and orphaned refresh tokens gone; only live retry answers kept');
  t.same((await d.select().from(authTokens)).map((r) => r.id), [live!.id]);
  t.same((await d.select().from(loginChallenges)).map((r) => r.challengeHash), ['y']);
  const { auditEvents } = await import('../../src/db/schema/index.js');
  t.match(
    (await d.select().from(auditEvents)).filter((e) => e.type === 'login.challenge_expired'),
    [{ outcome: 'failure', actorType: 'system', subjectId: uid }],
    'the unfinished sign-in is recorded as it is removed',
  );
  t.same((await d.select().from(passwordResetTokens)).map((r) => r.tokenHash), ['q']);
  t.same((await d.select().from(loginFailures)).map((r) => r.key), ['id:recent']);
});

t.test('cleanup of the MFA tables: expired codes and report links, old send counters, abandoned enrolments, untrusted devices', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const { db: d } = db.database;
  const { mfaFactors, otpCodes, otpSendCounters, securityReports, trustedDevices, userNetworks, users } = await import('../../src/db/schema/index.js');
  const now = Date.now();
  const at = (seconds: number) => new Date(now + seconds * 1000);
  const [user] = await d.insert(users).values({ email: 'm@example.com' }).returning();
  const uid = user!.id;
  const [active] = await d
    .insert(mfaFactors)
    .values([
      { userId: uid, type: 'totp', label: 'active', createdAt: at(-3 * 86400), confirmedAt: at(-3 * 86400) },
      { userId: uid, type: 'totp', label: 'abandoned', createdAt: at(-2 * 86400) },
      { userId: uid, type: 'sms', label: 'pending', createdAt: at(-60) },
    ])
    .returning();
  const code = (id: string, expiresAt: Date) => ({ id, userId: uid, channel: 'email' as const, destination: 'm@example.com', codeHash: 'h', createdAt: at(-600), expiresAt });
  await d.insert(otpCodes).values([code('00000000-0000-4000-8000-000000000001', at(-1)), code('00000000-0000-4000-8000-000000000002', at(60))]);
  await d.insert(otpSendCounters).values([
    { key: 'user:old', windowStart: at(-3 * 3600), count: 3, lastSentAt: at(-3 * 3600) },
    { key: 'user:recent', windowStart: at(-600), count: 3, lastSentAt: at(-60) },
  ]);
  await d.insert(securityReports).values([
    { userId: uid, tokenHash: 'old', kind: 'new_ip', createdAt: at(-8 * 86400), expiresAt: at(-1) },
    { userId: uid, tokenHash: 'live', kind: 'new_ip', createdAt: at(-60), expiresAt: at(3600) },
  ]);
  await d.insert(trustedDevices).values([
    { userId: uid, deviceDigest: 'gone', createdAt: at(-40 * 86400), lastSeenAt: at(-40 * 86400), trustedUntil: at(-1) },
    { userId: uid, deviceDigest: 'kept', createdAt: at(-60), lastSeenAt: at(-60), trustedUntil: at(86400) },
  ]);
  await d.insert(userNetworks).values([
    { userId: uid, network: '192.0.2.0/24', firstSeenAt: at(-500 * 86400), lastSeenAt: at(-401 * 86400) },
    { userId: uid, network: '198.51.100.0/24', firstSeenAt: at(-60), lastSeenAt: at(-60) },
  ]);

  const result = await runCleanup(d, new Date(now));
  t.equal(result.mfa, 6, 'one expired code, report, device, counter, network and abandoned enrolment');
  t.same((await d.select().from(mfaFactors)).map((f) => f.label).sort(), ['active', 'pending'], 'active factors and recent enrolments stay');
  t.equal(active!.label, 'active');
  t.same((await d.select().from(otpCodes)).map((c) => c.id), ['00000000-0000-4000-8000-000000000002']);
  t.same((await d.select().from(otpSendCounters)).map((c) => c.key), ['user:recent']);
  t.same((await d.select().from(securityReports)).map((r) => r.tokenHash), ['live']);
  t.same((await d.select().from(trustedDevices)).map((r) => r.deviceDigest), ['kept']);
  t.same((await d.select().from(userNetworks)).map((r) => r.network), ['198.51.100.0/24']);
  t.equal((await runCleanup(d, new Date(now))).mfa, 0, 'rerunning is a no-op');
});

t.test('cleanup removes records of revoked JWTs once the tokens would have expired, in bounded batches', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const { db: d } = db.database;
  const { oidcRevokedTokens } = await import('../../src/db/schema/index.js');
  const past = new Date(Date.now() - 60_000);
  const future = new Date(Date.now() + 60_000);
  const expired = CLEANUP_BATCH_SIZE + 3;
  await d.insert(oidcRevokedTokens).values(Array.from({ length: expired }, (_, i) => ({ jti: `old-${i}`, clientId: 'svc', expiresAt: past })));
  await d.insert(oidcRevokedTokens).values({ jti: 'live', clientId: 'svc', expiresAt: future });

  const result = await runCleanup(d);
  t.equal(result.tombstones, expired, 'every expired record removed, across batches');
  t.same((await d.select({ jti: oidcRevokedTokens.jti }).from(oidcRevokedTokens)).map((r) => r.jti), ['live'], 'a token still within its lifetime stays revoked');
});
