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
