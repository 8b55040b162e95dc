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
  t.same((await d.select().from(passwordResetTokens)).map((r) => r.tokenHash), ['q']);
  t.same((await d.select().from(loginFailures)).map((r) => r.key), ['id:recent']);
});
