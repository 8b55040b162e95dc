/**
 * The caller's list of sessions and tokens pages by the API's cursor convention: every entry once, newest
 * first, also when entries were created within one millisecond (the cursor keeps the database's
 * microseconds); a cursor this API did not return is refused.
 */
import t from 'tap';
import { sql } from 'drizzle-orm';
import { authTokens } from '../../src/db/schema/index.js';
import { api, login, NO_RATE_LIMITS, seedAuthUser } from '../helpers/auth.js';
import { startServer } from '../helpers/server.js';

type Page = { items: Array<{ id: string; name: string | null }>; next_cursor: string | null };

t.test('pages list every entry once, entries of one millisecond included', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const user = await seedAuthUser(server);
  const pair = await login(server);
  // Three personal tokens created within one millisecond (as the provider's mirrors can be), newest first by microsecond.
  const stamps = ['2026-01-01T00:00:00.123900Z', '2026-01-01T00:00:00.123500Z', '2026-01-01T00:00:00.123100Z'];
  await server.app.keryu.database.db.insert(authTokens).values(
    stamps.map((at, i) => ({ userId: user.id, kind: 'personal' as const, name: `t${i}`, tokenHash: `digest-${i}`, createdAt: new Date(at), expiresAt: new Date('2099-01-01T00:00:00Z') })),
  );
  // Date keeps milliseconds only: set the microseconds in SQL.
  for (const [i, at] of stamps.entries()) {
    await server.app.keryu.database.db.execute(sql`update ${authTokens} set created_at = ${at}::timestamptz where name = ${`t${i}`}`);
  }

  const seen: Array<string | null> = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 10; pages++) {
    const page: { status: number; body: Page } = await api<Page>(server, 'GET', `/api/auth/tokens/?limit=1${cursor ? `&cursor=${cursor}` : ''}`, { token: pair.access_token });
    t.equal(page.status, 200);
    seen.push(...page.body.items.map((i) => i.name));
    cursor = page.body.next_cursor;
    if (!cursor) break;
  }
  t.same(seen, [null, 't0', 't1', 't2'], 'the session, then the three tokens by microsecond, each once');

  t.match(await api(server, 'GET', '/api/auth/tokens/?cursor=bogus', { token: pair.access_token }), { status: 400, body: { error: 'invalid_request' } }, 'a bogus cursor');
  const millisecondCursor = Buffer.from(JSON.stringify(['2026-01-01T00:00:00.123Z', pair.session_id])).toString('base64url');
  t.match(await api(server, 'GET', `/api/auth/tokens/?cursor=${millisecondCursor}`, { token: pair.access_token }), { status: 400 }, 'a cursor without the microseconds is not one of ours');
});
