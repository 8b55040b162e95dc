import { eq, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/client.js';
import { users } from '../db/schema/index.js';

export type UserRow = Omit<typeof users.$inferSelect, 'passwordHash'>;
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
  createdAt: users.createdAt,
  updatedAt: users.updatedAt,
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createUserQueries(db: DbOrTx) {
  return {
    async findUserById(id: string): Promise<UserRow | undefined> {
      if (!UUID.test(id)) return undefined;
      const [row] = await db.select(publicColumns).from(users).where(eq(users.id, id)).limit(1);
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
    async findPasswordHashByUserId(id: string): Promise<string | undefined> {
      const [row] = await db.select({ hash: users.passwordHash }).from(users).where(eq(users.id, id)).limit(1);
      return row?.hash ?? undefined;
    },
    async insertUser(values: NewUser): Promise<UserRow> {
      const [row] = await db.insert(users).values(values).returning(publicColumns);
      if (!row) throw new Error('insert returned no row');
      return row;
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
