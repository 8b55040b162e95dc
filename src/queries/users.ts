import { and, asc, eq, ilike, or, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { oidcPayloads, users } from '../db/schema/index.js';
import { isUuid } from '../lib/uuid.js';

// sessionsValidAfter and sessionsKeptId are read only where provider sessions are loaded (the oidc adapter).
export type UserRow = Omit<typeof users.$inferSelect, 'passwordHash' | 'sessionsValidAfter' | 'sessionsKeptId'>;
export type NewUser = typeof users.$inferInsert;

/** Every column but the password hash: secrets come only from purpose-named finders. */
const publicColumns = {
  id: users.id,
  email: users.email,
  emailVerified: users.emailVerified,
  phone: users.phone,
  phoneVerified: users.phoneVerified,
  name: users.name,
  disabled: users.disabled,
  passwordResetRequired: users.passwordResetRequired,
  createdAt: users.createdAt,
  updatedAt: users.updatedAt,
};


export function createUserQueries(db: DbOrTx) {
  // Every code exchange and refresh loads the account: built once, run as a prepared statement.
  const userById = db.select(publicColumns).from(users).where(eq(users.id, sql.placeholder('id'))).limit(1).prepare('keryu_user_by_id');
  return {
    async findUserById(id: string): Promise<UserRow | undefined> {
      if (!isUuid(id)) return undefined;
      const [row] = await userById.execute({ id });
      return row;
    },
    /** `email` must already be normalized (see normalizeEmail). */
    async findUserByEmail(email: string): Promise<UserRow | undefined> {
      const [row] = await db.select(publicColumns).from(users).where(eq(sql`lower(${users.email})`, email)).limit(1);
      return row;
    },
    /** The account a login names, with its password hash, in one round trip (`email` normalized). */
    async findLoginCandidateByEmail(email: string): Promise<(UserRow & { passwordHash: string | null }) | undefined> {
      const [row] = await db
        .select({ ...publicColumns, passwordHash: users.passwordHash })
        .from(users)
        .where(eq(sql`lower(${users.email})`, email))
        .limit(1);
      return row;
    },
    /** How many accounts have a password hash of each argon2 cost (`m=..,t=..,p=..`; other hashes excluded). */
    async countPasswordHashCosts(): Promise<Array<{ cost: string; accounts: number }>> {
      const cost = sql<string>`substring(${users.passwordHash} from '^[$]argon2id[$]v=19[$](m=[0-9]+,t=[0-9]+,p=[0-9]+)[$]')`;
      const rows = await db.select({ cost, accounts: sql<number>`count(*)::int` }).from(users).where(sql`${users.passwordHash} is not null`).groupBy(cost);
      return rows.filter((r): r is { cost: string; accounts: number } => typeof r.cost === 'string');
    },

    async findPasswordHashByUserId(id: string): Promise<string | undefined> {
      const [row] = await db.select({ hash: users.passwordHash }).from(users).where(eq(users.id, id)).limit(1);
      return row?.hash ?? undefined;
    },
    async insertUser(values: NewUser): Promise<UserRow> {
      const [row] = await db.insert(users).values(values).returning(publicColumns);
      if (!row) throw new Error('insert returned no row');
      return row;
    },
    /**
     * Users oldest first, after the cursor `(created_at, id)` of the previous page (the time with the
     * database's microseconds, as `cursorKey` gives it), filtered by a part of the email (`email`) or of the
     * email or name (`search`), case-insensitive.
     */
    async listUsers(args: { limit: number; after?: { key: string; id: string } | undefined; email?: string | undefined; search?: string | undefined }): Promise<Array<UserRow & { cursorKey: string }>> {
      const like = (value: string) => `%${value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const conditions: Array<SQL | undefined> = [
        args.email ? ilike(users.email, like(args.email)) : undefined,
        args.search ? or(ilike(users.email, like(args.search)), ilike(users.name, like(args.search))) : undefined,
        args.after ? sql`(${users.createdAt}, ${users.id}) > (${args.after.key}::timestamptz, ${args.after.id}::uuid)` : undefined,
      ];
      return db
        .select({ ...publicColumns, cursorKey: sql<string>`to_char(${users.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` })
        .from(users)
        .where(and(...conditions))
        .orderBy(asc(users.createdAt), asc(users.id))
        .limit(args.limit + 1);
    },
    /** Deletes the user (assignments and grants cascade) and every provider artefact (tokens, sessions, grants) of theirs. */
    async deleteUser(id: string): Promise<void> {
      await db.delete(oidcPayloads).where(eq(oidcPayloads.accountId, id));
      await db.delete(users).where(eq(users.id, id));
    },
    async updateUser(id: string, values: Partial<Omit<NewUser, 'id' | 'createdAt'>>): Promise<UserRow | undefined> {
      const [row] = await db
        .update(users)
        .set({ ...values, updatedAt: sql`now()` })
        .where(eq(users.id, id))
        .returning(publicColumns);
      return row;
    },
  };
}
export type UserQueries = ReturnType<typeof createUserQueries>;
