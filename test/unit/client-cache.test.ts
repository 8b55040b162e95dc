/**
 * The client cache's rules, without a database: a load racing an invalidation is never stored, nothing is
 * cached (everything read through) while notifications are down, unknown client ids are never stored, and a
 * stored record cannot be changed in place by a caller.
 */
import t from 'tap';
import type { ClientAuthRecord, ClientQueries } from '../../src/queries/clients.js';
import { createClientMetadataCache } from '../../src/services/client-cache.js';

function fakeQueries(rows: Map<string, ClientAuthRecord>) {
  const calls: string[] = [];
  let gate: Promise<void> | undefined;
  const queries = {
    async findClientAuthRecord(clientId: string) {
      calls.push(clientId);
      const row = rows.get(clientId);
      await gate;
      return row && { metadata: { ...row.metadata }, digest: row.digest };
    },
  } as unknown as ClientQueries;
  return { queries, calls, hold: (p: Promise<void>) => (gate = p), release: () => (gate = undefined) };
}

const record = (secret: string): ClientAuthRecord => ({ metadata: { client_id: 'c', client_secret: secret, redirect_uris: ['https://a.example/cb'] }, digest: secret });

t.test('cached while live; read through while notifications are down', async (t) => {
  const rows = new Map([['c', record('d1')]]);
  const fake = fakeQueries(rows);
  const cache = createClientMetadataCache(fake.queries);
  await cache.queries.findClientSecretDigestById('c');
  await cache.queries.findClientSecretDigestById('c');
  t.equal(fake.calls.length, 2, 'not live: every lookup reads the database');
  cache.setLive(true);
  await cache.queries.findClientMetadataById('c');
  t.equal(await cache.queries.findClientSecretDigestById('c'), 'd1');
  t.equal(fake.calls.length, 3, 'live: one read, then the cache');
  rows.set('c', record('d2'));
  cache.invalidate('c');
  t.equal(await cache.queries.findClientSecretDigestById('c'), 'd2', 'an invalidated entry is read again');
  cache.setLive(false);
  rows.set('c', record('d3'));
  t.equal(await cache.queries.findClientSecretDigestById('c'), 'd3', 'down: never answered from what was cached');
  t.equal(cache.size, 0);
});

t.test('a load that started before an invalidation is not stored', async (t) => {
  const rows = new Map([['c', record('old')]]);
  const fake = fakeQueries(rows);
  const cache = createClientMetadataCache(fake.queries);
  cache.setLive(true);
  let open!: () => void;
  fake.hold(new Promise<void>((r) => (open = r)));
  const inflight = cache.queries.findClientSecretDigestById('c');
  rows.set('c', record('new'));
  cache.invalidate('c');
  open();
  t.equal(await inflight, 'old', 'the racing request gets what it read');
  fake.release();
  t.equal(await cache.queries.findClientSecretDigestById('c'), 'new', 'but the next one reads again');
});

t.test('unknown clients are not stored; stored records are frozen', async (t) => {
  const fake = fakeQueries(new Map([['c', record('d')]]));
  const cache = createClientMetadataCache(fake.queries);
  cache.setLive(true);
  t.equal(await cache.queries.findClientMetadataById('nobody'), undefined);
  t.equal(await cache.queries.findClientMetadataById('nobody'), undefined);
  t.equal(fake.calls.filter((c) => c === 'nobody').length, 2, 'looked up each time');
  t.equal(cache.size, 0);
  const metadata = await cache.queries.findClientMetadataById('c');
  t.throws(() => {
    (metadata!.redirect_uris as string[]).push('https://evil.example/cb');
  }, TypeError);
  t.same((await cache.queries.findClientMetadataById('c'))!.redirect_uris, ['https://a.example/cb']);
});
