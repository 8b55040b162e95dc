/**
 * Size: about 360 lines: every query of the auth_tokens table (sessions, refresh tokens, personal tokens and
 * the provider's mirrored sessions and grants) in one module, so each index has one reader.
 *
 * Data access for sessions and tokens (`auth_tokens`) and the refresh-token generations of first-party
 * sessions (`auth_refresh_tokens`). Token hashes come only from purpose-named finders.
 */
import { and, desc, eq, gt, inArray, isNotNull, isNull, lt, notInArray, or, sql } from 'drizzle-orm';
import { selectRows, type DbOrTx } from '../db/client.js';
import type { Cursor } from '../lib/pagination.js';
import { authRefreshTokens, authTokens, users, type DeviceInfo, type TokenKind } from '../db/schema/index.js';
import { isUuid } from '../lib/uuid.js';

export type AuthTokenRow = Omit<typeof authTokens.$inferSelect, 'tokenHash'>;
export type NewAuthToken = typeof authTokens.$inferInsert;

const publicColumns = {
  id: authTokens.id,
  userId: authTokens.userId,
  kind: authTokens.kind,
  name: authTokens.name,
  deviceInfo: authTokens.deviceInfo,
  deviceId: authTokens.deviceId,
  ipAddress: authTokens.ipAddress,
  scopes: authTokens.scopes,
  amr: authTokens.amr,
  reference: authTokens.reference,
  createdAt: authTokens.createdAt,
  expiresAt: authTokens.expiresAt,
  idleExpiresAt: authTokens.idleExpiresAt,
  lastUsedAt: authTokens.lastUsedAt,
  isActive: authTokens.isActive,
  revokedAt: authTokens.revokedAt,
};

/** A PostgreSQL array literal of quoted strings, for a `text[]` parameter inside raw SQL. */
const textArrayLiteral = (values: string[]) => `{${values.map((v) => `"${v.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;


export function createAuthTokenQueries(db: DbOrTx) {
  return {
    async insertToken(values: NewAuthToken): Promise<AuthTokenRow> {
      const [row] = await db.insert(authTokens).values(values).returning(publicColumns);
      if (!row) throw new Error('insert returned no row');
      return row;
    },

    async findTokenById(id: string): Promise<AuthTokenRow | undefined> {
      if (!isUuid(id)) return undefined;
      const [row] = await db.select(publicColumns).from(authTokens).where(eq(authTokens.id, id)).limit(1);
      return row;
    },

    /** A token of this user by id; another user's id finds nothing, exactly like an unknown one. */
    async findUserTokenById(userId: string, id: string): Promise<AuthTokenRow | undefined> {
      if (!isUuid(id)) return undefined;
      const [row] = await db
        .select(publicColumns)
        .from(authTokens)
        .where(and(eq(authTokens.id, id), eq(authTokens.userId, userId)))
        .limit(1);
      return row;
    },

    /** A personal token by a digest of its value (`TokenDigest.candidates`: one query), with its owner's state. */
    async findPersonalTokenByDigests(digests: string[]) {
      const [row] = await db
        .select({ ...publicColumns, userDisabled: users.disabled })
        .from(authTokens)
        .innerJoin(users, eq(users.id, authTokens.userId))
        .where(and(inArray(authTokens.tokenHash, digests), eq(authTokens.kind, 'personal')))
        .limit(1);
      return row;
    },

    /** What a bearer check needs to know about a session, by primary key. */
    async findSessionState(id: string) {
      if (!isUuid(id)) return undefined;
      const [row] = await db
        .select({
          id: authTokens.id,
          userId: authTokens.userId,
          kind: authTokens.kind,
          isActive: authTokens.isActive,
          expiresAt: authTokens.expiresAt,
          idleExpiresAt: authTokens.idleExpiresAt,
          lastUsedAt: authTokens.lastUsedAt,
          ipAddress: authTokens.ipAddress,
          amr: authTokens.amr,
          userDisabled: users.disabled,
        })
        .from(authTokens)
        .innerJoin(users, eq(users.id, authTokens.userId))
        .where(eq(authTokens.id, id))
        .limit(1);
      return row;
    },

    /**
     * Newest first, after the cursor's (created_at, id); each row carries its `cursorKey`, created_at with
     * the database's microseconds (a JavaScript Date would cut them and the next page would skip rows).
     * With `activeAt`, only what still works then (not revoked, before both its absolute and idle ends).
     */
    async listTokensByUser(userId: string, limit: number, after?: Cursor, filter: { kinds?: TokenKind[] | undefined; activeAt?: Date | undefined } = {}): Promise<Array<AuthTokenRow & { cursorKey: string }>> {
      const { kinds, activeAt } = filter;
      const active = activeAt
        ? and(
            eq(authTokens.isActive, true),
            or(isNull(authTokens.expiresAt), gt(authTokens.expiresAt, activeAt)),
            or(isNull(authTokens.idleExpiresAt), gt(authTokens.idleExpiresAt, activeAt)),
          )
        : undefined;
      return db
        .select({ ...publicColumns, cursorKey: sql<string>`to_char(${authTokens.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` })
        .from(authTokens)
        .where(
          and(
            eq(authTokens.userId, userId),
            kinds ? inArray(authTokens.kind, kinds) : undefined,
            active,
            after ? sql`(${authTokens.createdAt}, ${authTokens.id}) < (${after.key}::timestamptz, ${after.id}::uuid)` : undefined,
          ),
        )
        .orderBy(desc(authTokens.createdAt), desc(authTokens.id))
        .limit(limit);
    },

    async updateUserToken(
      userId: string,
      id: string,
      values: Partial<Pick<NewAuthToken, 'name' | 'isActive' | 'expiresAt' | 'revokedAt'>>,
    ): Promise<AuthTokenRow | undefined> {
      if (!isUuid(id)) return undefined;
      const [row] = await db
        .update(authTokens)
        .set(values)
        .where(and(eq(authTokens.id, id), eq(authTokens.userId, userId)))
        .returning(publicColumns);
      return row;
    },

    async deleteUserToken(userId: string, id: string): Promise<boolean> {
      if (!isUuid(id)) return false;
      const rows = await db
        .delete(authTokens)
        .where(and(eq(authTokens.id, id), eq(authTokens.userId, userId)))
        .returning({ id: authTokens.id });
      return rows.length > 0;
    },

    /** Marks a session or token revoked; returns whether it was active. */
    async revokeToken(id: string, at: Date): Promise<boolean> {
      const rows = await db
        .update(authTokens)
        .set({ isActive: false, revokedAt: at })
        .where(and(eq(authTokens.id, id), eq(authTokens.isActive, true)))
        .returning({ id: authTokens.id });
      return rows.length > 0;
    },

    /** Revokes a user's tokens of the given kinds (all but `exceptId`); returns the rows revoked. */
    async revokeTokensByUser(userId: string, kinds: TokenKind[], at: Date, exceptIds: string[] = []) {
      return db
        .update(authTokens)
        .set({ isActive: false, revokedAt: at })
        .where(
          and(
            eq(authTokens.userId, userId),
            inArray(authTokens.kind, kinds),
            eq(authTokens.isActive, true),
            exceptIds.length ? notInArray(authTokens.id, exceptIds) : undefined,
          ),
        )
        .returning({ id: authTokens.id, kind: authTokens.kind, reference: authTokens.reference });
    },

    /**
     * Records a use at most once per `everySeconds`: the condition makes concurrent requests (on any
     * replica) write once, and requests within the period not at all.
     */
    async touchToken(id: string, at: Date, ip: string | undefined, everySeconds: number): Promise<void> {
      const threshold = new Date(at.getTime() - everySeconds * 1000);
      await db
        .update(authTokens)
        .set({ lastUsedAt: at, ...(ip ? { ipAddress: ip } : {}) })
        .where(and(eq(authTokens.id, id), or(isNull(authTokens.lastUsedAt), lt(authTokens.lastUsedAt, threshold))));
    },

    /** Starts a first-party session and its first refresh token in one statement (one round trip, atomic). */
    async insertSessionWithRefreshToken(v: {
      id: string;
      userId: string;
      name: string | null;
      deviceInfo: DeviceInfo;
      deviceId: string | null;
      ipAddress: string | null;
      amr: string[];
      now: Date;
      expiresAt: Date;
      refresh: { id: string; tokenHash: string; expiresAt: Date };
    }): Promise<void> {
      const now = v.now.toISOString();
      await db.execute(
        sql`with session as (
              insert into ${authTokens} (id, user_id, kind, name, device_info, device_id, ip_address, amr, created_at, expires_at, idle_expires_at, last_used_at)
              values (${v.id}::uuid, ${v.userId}::uuid, 'session', ${v.name}, ${JSON.stringify(v.deviceInfo)}::jsonb, ${v.deviceId}, ${v.ipAddress}, ${textArrayLiteral(v.amr)}::text[],
                      ${now}::timestamptz, ${v.expiresAt.toISOString()}::timestamptz, ${v.refresh.expiresAt.toISOString()}::timestamptz, ${now}::timestamptz)
              returning id)
            insert into ${authRefreshTokens} (id, session_id, token_hash, created_at, expires_at)
            select ${v.refresh.id}::uuid, id, ${v.refresh.tokenHash}, ${now}::timestamptz, ${v.refresh.expiresAt.toISOString()}::timestamptz from session`,
      );
    },

    /** Mirrors of oidc-provider sessions and grants: created or refreshed when the provider saves one. */
    async upsertOidcMirror(values: NewAuthToken & { reference: string }): Promise<void> {
      await db
        .insert(authTokens)
        .values(values)
        .onConflictDoUpdate({
          target: [authTokens.kind, authTokens.reference],
          set: { expiresAt: values.expiresAt, lastUsedAt: values.lastUsedAt, ...(values.ipAddress ? { ipAddress: values.ipAddress } : {}) },
          where: eq(authTokens.isActive, true),
        });
    },

    async touchOidcMirror(kind: TokenKind, reference: string, at: Date, everySeconds: number): Promise<void> {
      const threshold = new Date(at.getTime() - everySeconds * 1000);
      await db
        .update(authTokens)
        .set({ lastUsedAt: at })
        .where(
          and(eq(authTokens.kind, kind), eq(authTokens.reference, reference), or(isNull(authTokens.lastUsedAt), lt(authTokens.lastUsedAt, threshold))),
        );
    },

    /** The list entry that mirrors a provider session or grant of this user. */
    async findOidcMirror(userId: string, kind: TokenKind, reference: string): Promise<AuthTokenRow | undefined> {
      const [row] = await db
        .select(publicColumns)
        .from(authTokens)
        .where(and(eq(authTokens.userId, userId), eq(authTokens.kind, kind), eq(authTokens.reference, reference)))
        .limit(1);
      return row;
    },

    async deactivateOidcMirror(kind: TokenKind, reference: string, at: Date): Promise<void> {
      await db
        .update(authTokens)
        .set({ isActive: false, revokedAt: at })
        .where(and(eq(authTokens.kind, kind), eq(authTokens.reference, reference), eq(authTokens.isActive, true)));
    },
  };
}
export type AuthTokenQueries = ReturnType<typeof createAuthTokenQueries>;

export type RefreshTokenRow = typeof authRefreshTokens.$inferSelect;

export function createRefreshTokenQueries(db: DbOrTx) {
  // The lookup of every refresh is built once (drizzle rebuilds a query's SQL on every call otherwise: a tenth
  // of a refresh's CPU).
  const findByDigests = db
    .select({
      token: authRefreshTokens,
      session: {
        id: authTokens.id,
        userId: authTokens.userId,
        isActive: authTokens.isActive,
        expiresAt: authTokens.expiresAt,
        deviceId: authTokens.deviceId,
        ipAddress: authTokens.ipAddress,
        kind: authTokens.kind,
      },
      userDisabled: users.disabled,
    })
    .from(authRefreshTokens)
    .innerJoin(authTokens, eq(authTokens.id, authRefreshTokens.sessionId))
    .innerJoin(users, eq(users.id, authTokens.userId))
    .where(sql`${authRefreshTokens.tokenHash} = any(${sql.placeholder('digests')}::text[])`)
    .limit(1)
    .prepare('keryu_find_refresh_token_by_digests');
  return {
    async insertRefreshToken(values: typeof authRefreshTokens.$inferInsert): Promise<{ id: string }> {
      const [row] = await db.insert(authRefreshTokens).values(values).returning({ id: authRefreshTokens.id });
      if (!row) throw new Error('insert returned no row');
      return row;
    },

    /**
     * Rotates a refresh token in one statement: marks it used only if it is still unused (the conditional
     * update PostgreSQL serializes on the row, across replicas), inserts the successor, forgets the retry
     * answer of the token before it and records the session's activity, all or nothing. Returns false when another request rotated it first.
     */
    async rotateRefreshToken(r: {
      tokenId: string;
      successor: { id: string; tokenHash: string; expiresAt: Date };
      now: Date;
      usedByDevice: string | null;
      retryResponse: string | null;
      retryUntil: Date | null;
      ipAddress: string | undefined;
    }): Promise<boolean> {
      const now = r.now.toISOString();
      const rows = await selectRows<{ id: string }>(
        db,
        sql`with old as (
              update ${authRefreshTokens}
                 set used_at = ${now}::timestamptz, successor_id = ${r.successor.id}::uuid, used_by_device = ${r.usedByDevice},
                     retry_response = ${r.retryResponse}, retry_until = ${r.retryUntil?.toISOString() ?? null}::timestamptz
               where id = ${r.tokenId}::uuid and used_at is null
                 and exists (select 1 from ${authTokens} s where s.id = ${authRefreshTokens.sessionId} and s.is_active)
           returning session_id),
            successor as (
              insert into ${authRefreshTokens} (id, session_id, token_hash, created_at, expires_at)
              select ${r.successor.id}::uuid, session_id, ${r.successor.tokenHash}, ${now}::timestamptz, ${r.successor.expiresAt.toISOString()}::timestamptz from old
           returning id),
            predecessor as (
              -- its successor (this token) is now used, so the token before it can no longer be retried
              update ${authRefreshTokens} set retry_response = null, retry_until = null
               where successor_id = ${r.tokenId}::uuid and retry_response is not null and exists (select 1 from old)),
            activity as (
              update ${authTokens}
                 set last_used_at = ${now}::timestamptz, idle_expires_at = ${r.successor.expiresAt.toISOString()}::timestamptz,
                     ip_address = coalesce(${r.ipAddress ?? null}, ip_address)
               where id = (select session_id from old))
          select id from successor`,
      );
      return rows.length > 0;
    },

    /** The refresh token with one of these digests (`TokenDigest.candidates`: one query), its session and its owner's state. */
    async findRefreshTokenByDigests(digests: string[]) {
      const [row] = await findByDigests.execute({ digests });
      return row;
    },

    async findRefreshTokenUsedAt(id: string): Promise<Date | null | undefined> {
      const [row] = await db.select({ usedAt: authRefreshTokens.usedAt }).from(authRefreshTokens).where(eq(authRefreshTokens.id, id)).limit(1);
      return row ? row.usedAt : undefined;
    },

    async markRefreshTokenUsed(
      id: string,
      values: { usedAt: Date; successorId: string; usedByDevice: string | null; retryResponse: string | null; retryUntil: Date | null },
    ): Promise<void> {
      await db.update(authRefreshTokens).set(values).where(eq(authRefreshTokens.id, id));
    },

    async clearRetryResponsesBySession(sessionId: string): Promise<void> {
      await db
        .update(authRefreshTokens)
        .set({ retryResponse: null, retryUntil: null })
        .where(and(eq(authRefreshTokens.sessionId, sessionId), isNotNull(authRefreshTokens.retryResponse)));
    },

    async clearRetryResponsesOfSessions(sessionIds: string[]): Promise<void> {
      if (!sessionIds.length) return;
      await db
        .update(authRefreshTokens)
        .set({ retryResponse: null, retryUntil: null })
        .where(and(inArray(authRefreshTokens.sessionId, sessionIds), isNotNull(authRefreshTokens.retryResponse)));
    },
  };
}
export type RefreshTokenQueries = ReturnType<typeof createRefreshTokenQueries>;
