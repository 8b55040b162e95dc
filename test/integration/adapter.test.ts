/**
 * The adapter contract, run against oidc-provider's own memory adapter (the reference) and ours, plus the
 * guarantees only ours gives: atomic single use and grant tombstones.
 */
import t, { type Test } from 'tap';
import { eq } from 'drizzle-orm';
import type { Adapter, AdapterPayload } from 'oidc-provider';
// @ts-expect-error: the library ships no types for its internal memory adapter
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import { oidcPayloads } from '../../src/db/schema/index.js';
import { createAdapterClass } from '../../src/oidc/adapter.js';
import { createClientQueries } from '../../src/queries/clients.js';
import { createTestDatabase } from '../helpers/db.js';

type AdapterCtor = new (model: string) => Adapter;

const payload = (extra: Partial<AdapterPayload> = {}): AdapterPayload => ({ kind: 'Test', jti: 'x', ...extra }) as AdapterPayload;

async function contract(t: Test, name: string, Ctor: AdapterCtor) {
  t.test(`${name}: contract`, async (t) => {
    const codes = new Ctor('AuthorizationCode');
    await codes.upsert('c1', payload({ grantId: 'g1', accountId: 'acc' }), 60);
    t.match(await codes.find('c1'), { grantId: 'g1', accountId: 'acc' }, 'finds what it stored');
    t.equal(await codes.find('nope'), undefined, 'unknown id → undefined');
    t.equal(await new Ctor('AccessToken').find('c1'), undefined, 'ids are per model');

    await codes.consume('c1');
    t.ok((await codes.find('c1'))?.consumed, 'consumed flag is reported');

    await codes.destroy('c1');
    t.equal(await codes.find('c1'), undefined, 'destroyed');

    const sessions = new Ctor('Session');
    await sessions.upsert('s1', payload({ uid: 'u-1', accountId: 'acc' }), 60);
    t.match(await sessions.findByUid('u-1'), { uid: 'u-1' }, 'findByUid');

    const devices = new Ctor('DeviceCode');
    await devices.upsert('d1', payload({ userCode: 'ABCD-EFGH', grantId: 'g2' }), 60);
    t.match(await devices.findByUserCode('ABCD-EFGH'), { userCode: 'ABCD-EFGH' }, 'findByUserCode');

    const tokens = new Ctor('AccessToken');
    const refresh = new Ctor('RefreshToken');
    await tokens.upsert('a1', payload({ grantId: 'g3' }), 60);
    await refresh.upsert('r1', payload({ grantId: 'g3' }), 60);
    await tokens.upsert('a2', payload({ grantId: 'other' }), 60);
    await tokens.revokeByGrantId('g3');
    await refresh.revokeByGrantId('g3');
    t.equal(await tokens.find('a1'), undefined, 'revokeByGrantId removes the grant’s access tokens');
    t.equal(await refresh.find('r1'), undefined, 'and its refresh tokens');
    t.ok(await tokens.find('a2'), 'other grants are untouched');
  });
}

t.test('adapters', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const Ours = createAdapterClass({ db: db.database.db, clients: createClientQueries(db.database.db), tombstoneTtlSeconds: 3600 });

  await contract(t, 'memory adapter (reference)', MemoryAdapter as AdapterCtor);
  await contract(t, 'postgres adapter', Ours);

  t.test('expired rows are never returned', async (t) => {
    const tokens = new Ours('AccessToken');
    await tokens.upsert('old', payload({ grantId: 'g-old' }), 60);
    await db.database.db.update(oidcPayloads).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(oidcPayloads.id, 'old'));
    t.equal(await tokens.find('old'), undefined);
    const sessions = new Ours('Session');
    await sessions.upsert('s-old', payload({ uid: 'uid-old' }), 60);
    await db.database.db.update(oidcPayloads).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(oidcPayloads.id, 's-old'));
    t.equal(await sessions.findByUid('uid-old'), undefined, 'also through findByUid');
  });

  t.test('consume is single use, even when raced', async (t) => {
    const refresh = new Ours('RefreshToken');
    await refresh.upsert('r-race', payload({ grantId: 'g-race' }), 60);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => refresh.consume('r-race')));
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one consume wins');
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.ok(rejected.every((r) => (r.reason as { error?: string }).error === 'invalid_grant'), 'the others fail with invalid_grant');
    t.ok(await refresh.find('r-race'), 'a raced refresh token does not revoke its grant');
  });

  t.test('a raced authorization code revokes what the grant issued', async (t) => {
    const codes = new Ours('AuthorizationCode');
    const tokens = new Ours('AccessToken');
    await codes.upsert('code-race', payload({ grantId: 'g-code' }), 60);
    await codes.consume('code-race');
    await tokens.upsert('at-from-code', payload({ grantId: 'g-code' }), 60);
    const second = await codes.consume('code-race').then(() => undefined, (err: { error?: string }) => err);
    t.equal(second?.error, 'invalid_grant', 'the second redemption fails');
    t.equal(await tokens.find('at-from-code'), undefined, 'the first redemption’s token is revoked');
  });

  t.test('a revoked grant stays revoked for tokens written after the revocation', async (t) => {
    const tokens = new Ours('AccessToken');
    const grants = new Ours('Grant');
    await grants.upsert('g-late', payload({ accountId: 'acc' }), 60);
    await tokens.revokeByGrantId('g-late');
    await tokens.upsert('late-token', payload({ grantId: 'g-late' }), 60);
    t.equal(await tokens.find('late-token'), undefined, 'token saved after revocation is refused');
    t.equal(await grants.find('g-late'), undefined, 'the grant itself is gone');
  });

  t.test('clients come from the clients table', async (t) => {
    const clients = new Ours('Client');
    t.equal(await clients.find('missing'), undefined);
    await t.rejects(clients.upsert('x', payload(), 0), /managed through/);
  });
});
