/**
 * The revocation cache's rules, without a database: the database is asked once per token while notifications
 * flow and on every check while they are down; a notification wins over a query it raced; a revocation written
 * through the cache is refused at once; a payload it cannot read makes it forget what it remembered.
 */
import t from 'tap';
import type { RevocableToken, RevokedTokenQueries } from '../../src/queries/revoked-tokens.js';
import { createRevokedTokenCache } from '../../src/services/revoked-token-cache.js';

function fakeQueries() {
  const revokedJtis = new Set<string>();
  const revokedGrants = new Set<string>();
  const calls: string[] = [];
  let gate: Promise<void> | undefined;
  const queries = {
    async isAccessTokenRevoked(token: RevocableToken) {
      calls.push(token.jti);
      const answer = revokedJtis.has(token.jti) || (token.grantId !== undefined && revokedGrants.has(token.grantId));
      await gate;
      return answer;
    },
    async insertRevokedToken(input: { jti: string }) {
      revokedJtis.add(input.jti);
    },
  } as unknown as RevokedTokenQueries;
  return { queries, calls, revokedJtis, revokedGrants, hold: (p: Promise<void>) => (gate = p), release: () => (gate = undefined) };
}

const token = { jti: 'j1', grantId: 'g1' };
const exp = () => Math.floor(Date.now() / 1000) + 3600;

t.test('asked once while live; every time while notifications are down', async (t) => {
  const fake = fakeQueries();
  const cache = createRevokedTokenCache(fake.queries);
  t.equal(await cache.isRevoked(token), false);
  t.equal(await cache.isRevoked(token), false);
  t.equal(fake.calls.length, 2, 'not live: every check reads the database');
  cache.setLive(true);
  t.equal(await cache.isRevoked(token), false);
  t.equal(await cache.isRevoked(token), false);
  t.equal(fake.calls.length, 3, 'live: one read, then memory');
  cache.setLive(false);
  fake.revokedJtis.add('j1');
  t.equal(await cache.isRevoked(token), true, 'down: never answered from memory');
});

t.test('a notified revocation of the token or of its grant is refused without asking', async (t) => {
  const fake = fakeQueries();
  const cache = createRevokedTokenCache(fake.queries);
  cache.setLive(true);
  t.equal(await cache.isRevoked(token), false);
  cache.notified(`g ${exp()} g1`);
  t.equal(await cache.isRevoked(token), true, 'grant revoked');
  t.equal(await cache.isRevoked({ jti: 'j2', grantId: 'g1' }), true, 'every token of the grant');
  cache.notified(`j ${exp()} j3`);
  t.equal(await cache.isRevoked({ jti: 'j3' }), true, 'token revoked');
  t.equal(fake.calls.length, 1, 'only the first check asked the database');
  t.same(cache.size, { revoked: 2, checked: 1 });
});

t.test('a notification that arrives while the query runs wins over its answer', async (t) => {
  const fake = fakeQueries();
  const cache = createRevokedTokenCache(fake.queries);
  cache.setLive(true);
  let open!: () => void;
  fake.hold(new Promise<void>((r) => (open = r)));
  const inflight = cache.isRevoked(token);
  cache.notified(`j ${exp()} j1`);
  open();
  t.equal(await inflight, true, 'the racing check is refused');
  fake.release();
  t.equal(await cache.isRevoked(token), true);
});

t.test('an answer from before a lost subscription is not remembered', async (t) => {
  const fake = fakeQueries();
  const cache = createRevokedTokenCache(fake.queries);
  cache.setLive(true);
  let open!: () => void;
  fake.hold(new Promise<void>((r) => (open = r)));
  const inflight = cache.isRevoked(token);
  cache.setLive(false);
  cache.setLive(true);
  open();
  t.equal(await inflight, false);
  fake.release();
  fake.revokedJtis.add('j1'); // revoked while the subscription was down: no notification
  t.equal(await cache.isRevoked(token), true, 'asked again');
});

t.test('a revocation written through the cache is refused at once; an unreadable payload forgets everything', async (t) => {
  const fake = fakeQueries();
  const cache = createRevokedTokenCache(fake.queries);
  cache.setLive(true);
  t.equal(await cache.queries.isAccessTokenRevoked(token), false);
  await cache.queries.insertRevokedToken({ jti: 'j1', clientId: 'c', expiresAt: new Date(Date.now() + 60_000) });
  const calls = fake.calls.length;
  t.equal(await cache.queries.isAccessTokenRevoked(token), true, 'refused from memory');
  t.equal(fake.calls.length, calls);

  const other = { jti: 'j9', grantId: 'g9' };
  t.equal(await cache.isRevoked(other), false);
  fake.revokedGrants.add('g9');
  cache.notified(''); // what the trigger sends for an id too long for a payload
  t.same(cache.size, { revoked: 0, checked: 0 });
  t.equal(await cache.isRevoked(other), true, 'asked again, and the database knows');
});
