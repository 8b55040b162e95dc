/**
 * Artefact writes of concurrent requests share one statement per event-loop turn (group commit): every write
 * is stored and settles only once stored, a second write of the same artefact in the same turn wins as it would
 * sequentially, and a write that fails fails only its own request.
 */
import t from 'tap';
import type { AdapterPayload } from 'oidc-provider';
import { createAdapterClass } from '../../src/oidc/adapter.js';
import { createClientQueries } from '../../src/queries/clients.js';
import { createTestDatabase } from '../helpers/db.js';

t.test('concurrent upserts are batched without losing or reordering writes', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const Adapter = createAdapterClass({ db: db.database.db, clients: createClientQueries(db.database.db), tombstoneTtlSeconds: 3600 });
  const tokens = new Adapter('AccessToken');
  const codes = new Adapter('AuthorizationCode');

  await Promise.all(
    Array.from({ length: 50 }, (_, i) => (i % 2 ? tokens : codes).upsert(`t${i}`, { jti: `t${i}`, grantId: `g${i}`, accountId: 'acc' } as AdapterPayload, 60)),
  );
  for (let i = 0; i < 50; i++) t.match(await (i % 2 ? tokens : codes).find(`t${i}`), { jti: `t${i}`, grantId: `g${i}` });

  await Promise.all([tokens.upsert('same', { jti: 'same', n: 1 } as AdapterPayload, 60), tokens.upsert('same', { jti: 'same', n: 2 } as AdapterPayload, 60)]);
  t.match(await tokens.find('same'), { n: 2 }, 'the later write of one artefact wins');

  // A row the database refuses (a lone UTF-16 surrogate is not valid jsonb) fails its own write, not its batch-mates.
  const results = await Promise.allSettled([
    tokens.upsert('ok-1', { jti: 'ok-1' } as AdapterPayload, 60),
    tokens.upsert('refused', { jti: 'refused', note: '\uD800' } as AdapterPayload, 60),
    tokens.upsert('ok-2', { jti: 'ok-2' } as AdapterPayload, 60),
  ]);
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  t.ok(await tokens.find('ok-1'));
  t.ok(await tokens.find('ok-2'));
  t.equal(await tokens.find('refused'), undefined, 'the refused write stored nothing');
});
