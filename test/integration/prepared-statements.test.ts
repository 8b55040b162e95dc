/**
 * Every query reaches PostgreSQL as a named prepared statement (src/db/prepared-statements.ts): drizzle's
 * unnamed statements cost the driver two round trips each. A named statement shows in the session's
 * pg_prepared_statements; an unnamed one never does. Checked on one connection, outside and inside a
 * transaction and a savepoint.
 */
import { eq, sql } from 'drizzle-orm';
import t from 'tap';
import { openDatabase } from '../../src/db/client.js';
import { users } from '../../src/db/schema/index.js';
import { createDatabase, migratedTemplate, testDatabaseUrl } from '../helpers/db.js';

if (!testDatabaseUrl) {
  t.pass('PostgreSQL only (PGlite has no driver round trips)');
} else {
  const created = await createDatabase(testDatabaseUrl, { template: await migratedTemplate(testDatabaseUrl) });
  const database = await openDatabase({ kind: 'postgres', url: created.url, poolSize: 1 });
  t.teardown(async () => {
    await database.close();
    await created.drop();
  });
  const { db } = database;
  const preparedLike = async (handle: Pick<typeof db, 'execute'>, fragment: string) => {
    const rows = (await handle.execute(sql`select statement from pg_prepared_statements where statement like ${`%${fragment}%`} and statement not like '%pg_prepared_statements%'`)) as unknown as unknown[];
    return rows.length;
  };

  t.test('a query built with drizzle is prepared on its connection', async (t) => {
    t.equal(await preparedLike(db, 'email_verified'), 0, 'nothing prepared for the users table yet');
    await db.select({ id: users.id }).from(users).where(eq(users.email, 'nobody@example.com'));
    t.equal(await preparedLike(db, '"email" = $1'), 1, 'the select is a named statement');
  });

  t.test('inside a transaction and a savepoint too', async (t) => {
    await db.transaction(async (tx) => {
      await tx.update(users).set({ name: 'x' }).where(eq(users.email, 'nobody-in-tx@example.com'));
      t.equal(await preparedLike(tx, 'update "users"'), 1, 'the update in the transaction');
      await tx.transaction(async (inner) => {
        await inner.delete(users).where(eq(users.email, 'nobody-in-savepoint@example.com'));
        t.equal(await preparedLike(inner, 'delete from "users"'), 1, 'the delete in the savepoint');
      });
    });
  });
}
