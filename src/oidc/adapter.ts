/**
 * oidc-provider adapter on PostgreSQL (drizzle). One row per artefact in `oidc_payloads`; clients come
 * from the `clients` table. Two guarantees the library's default (check-then-mark) does not give across
 * replicas:
 *  - `consume` is one conditional UPDATE; when it changes no row the request fails with invalid_grant.
 *  - `revokeByGrantId` leaves a tombstone, and `find` never returns an artefact of a tombstoned grant,
 *    so a token saved a moment after the revocation by an in-flight request is dead too.
 *  - a browser session signed in before its account's `sessions_valid_after` is never returned, so a
 *    session that an in-flight request writes back after "end every session" stays ended; nor is the
 *    session of an account that is disabled or must reset its password.
 * @see RFC 6749 §4.1.2 (a code used twice should revoke what it issued), RFC 9700 §4.14.2
 */
import { and, eq, gt, isNull, notExists, or, sql } from 'drizzle-orm';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Db } from '../db/client.js';
import { oidcPayloads, oidcRevokedGrants, users } from '../db/schema/index.js';
import type { ClientQueries } from '../queries/clients.js';

export interface AdapterDeps {
  db: Db;
  clients: ClientQueries;
  /** How long a revoked grant's tombstone is kept: at least the longest lifetime of any of its tokens. */
  tombstoneTtlSeconds: number;
}

type Constructor = new (model: string) => Adapter;

const notExpired = or(isNull(oidcPayloads.expiresAt), gt(oidcPayloads.expiresAt, sql`now()`));

/**
 * PostgreSQL cannot store U+0000 in `text` or `jsonb`; sending one makes the query fail (a 500). Every
 * value the provider generates is NUL-free, so a lookup by such a value finds nothing, and a payload
 * carrying one came from request input and is refused as invalid_request.
 */
function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(hasNul);
  if (value && typeof value === 'object') return Object.entries(value).some(([k, v]) => k.includes('\u0000') || hasNul(v));
  return false;
}

interface PayloadRow {
  model: string;
  id: string;
  payload: AdapterPayload;
  grantId: string | null;
  userCode: string | null;
  uid: string | null;
  accountId: string | null;
  expiresAt: string | null;
}

/**
 * Group commit for artefact writes: every upsert queued during one event-loop turn goes to the database in one
 * statement; each caller's promise settles when that statement has committed, so a request still answers only
 * after its own write is durable. Each artefact is its own row (nothing here spans rows), so writing several
 * at once changes no guarantee. Two writes of the same artefact in one turn keep the later one, as sequential
 * writes would. If the shared statement fails, each row is retried alone so one bad row fails only its request.
 */
function createUpsertBatch(write: (rows: PayloadRow[]) => Promise<unknown>): (row: PayloadRow) => Promise<void> {
  let queue: Array<{ row: PayloadRow; resolve: () => void; reject: (err: unknown) => void }> = [];
  async function flush(): Promise<void> {
    const batch = queue;
    queue = [];
    const rows = new Map<string, PayloadRow>();
    for (const { row } of batch) rows.set(`${row.model}\u0000${row.id}`, row);
    try {
      await write([...rows.values()]);
      for (const p of batch) p.resolve();
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      // In queue order, so two writes of one artefact still end with the later one.
      for (const p of batch) await write([p.row]).then(p.resolve, p.reject);
    }
  }
  return (row) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ row, resolve, reject });
      if (queue.length === 1) setImmediate(() => void flush());
    });
}

export function createAdapterClass(deps: AdapterDeps): Constructor {
  const { db } = deps;

  const grantNotRevoked = notExists(
    db.select({ one: sql`1` }).from(oidcRevokedGrants).where(eq(oidcRevokedGrants.grantId, oidcPayloads.grantId)),
  );

  // The account of a session, as a uuid (NULL for anything else, so the cast never fails and the primary key is used).
  const accountUuid = sql`case when ${oidcPayloads.accountId} ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then ${oidcPayloads.accountId}::uuid end`;
  // A session is ended when its account is disabled or must reset its password (findAccount refuses both, which
  // the library does not expect of a stored session), or when it signed in before the account's sessions were
  // ended (`loginTs` has second precision: before the second of the revocation), unless it is the one session that
  // ending them kept ("sign out everywhere else").
  const sessionNotEnded = notExists(
    db
      .select({ one: sql`1` })
      .from(users)
      .where(
        and(
          sql`${users.id} = ${accountUuid}`,
          or(
            users.disabled,
            users.passwordResetRequired,
            and(
              sql`date_trunc('second', ${users.sessionsValidAfter}) > to_timestamp(coalesce((${oidcPayloads.payload}->>'loginTs')::bigint, 0))`,
              or(isNull(users.sessionsKeptId), sql`${users.sessionsKeptId} <> ${oidcPayloads.id}`),
            ),
          ),
        ),
      ),
  );

  // The hot queries are built once (drizzle rebuilds a query's SQL on every call otherwise) and run as
  // named prepared statements, so PostgreSQL parses and plans them once per connection.
  const modelParam = sql.placeholder('model');
  const idParam = sql.placeholder('id');
  const findById = db
    .select({ payload: oidcPayloads.payload, consumedAt: oidcPayloads.consumedAt })
    .from(oidcPayloads)
    .where(and(eq(oidcPayloads.model, modelParam), eq(oidcPayloads.id, idParam), notExpired, grantNotRevoked))
    .limit(1)
    .prepare('keryu_oidc_find_by_id');
  const findSessionById = db
    .select({ payload: oidcPayloads.payload, consumedAt: oidcPayloads.consumedAt })
    .from(oidcPayloads)
    .where(and(eq(oidcPayloads.model, 'Session'), eq(oidcPayloads.id, idParam), notExpired, sessionNotEnded))
    .limit(1)
    .prepare('keryu_oidc_find_session_by_id');
  const consumeById = db
    .update(oidcPayloads)
    .set({ consumedAt: sql`now()` })
    .where(and(eq(oidcPayloads.model, modelParam), eq(oidcPayloads.id, idParam), isNull(oidcPayloads.consumedAt)))
    .returning({ grantId: oidcPayloads.grantId })
    .prepare('keryu_oidc_consume');
  // Upserts of concurrent requests are written together: one multi-row statement, so one round trip and one
  // commit, per event-loop turn (see createUpsertBatch). The rows travel as one JSON array parameter expanded by
  // jsonb_to_recordset, so it is one prepared statement whatever the batch size.
  const upsertRows = db
    .insert(oidcPayloads)
    .select(
      sql`select r.model, r.id, r.payload, r.grant_id, r.user_code, r.uid, r.account_id, r.expires_at, null::timestamptz
        from jsonb_to_recordset(${sql.placeholder('rows')}::jsonb)
        as r(model text, id text, payload jsonb, grant_id text, user_code text, uid text, account_id text, expires_at timestamptz)`,
    )
    .onConflictDoUpdate({
      target: [oidcPayloads.model, oidcPayloads.id],
      set: {
        payload: sql`excluded.payload`,
        grantId: sql`excluded.grant_id`,
        userCode: sql`excluded.user_code`,
        uid: sql`excluded.uid`,
        accountId: sql`excluded.account_id`,
        expiresAt: sql`excluded.expires_at`,
      },
    })
    .prepare('keryu_oidc_upsert_rows');
  const upsert = createUpsertBatch((rows) =>
    upsertRows.execute({
      rows: JSON.stringify(
        rows.map((r) => ({
          model: r.model,
          id: r.id,
          payload: r.payload,
          grant_id: r.grantId,
          user_code: r.userCode,
          uid: r.uid,
          account_id: r.accountId,
          expires_at: r.expiresAt,
        })),
      ),
    }),
  );

  function toPayload(row: { payload: Record<string, unknown>; consumedAt: Date | null } | undefined): AdapterPayload | undefined {
    if (!row) return undefined;
    if (!row.consumedAt) return row.payload as AdapterPayload;
    return { ...row.payload, consumed: Math.floor(row.consumedAt.getTime() / 1000) } as AdapterPayload;
  }

  async function revokeGrant(grantId: string): Promise<void> {
    await db.transaction(async (tx) => {
      await tx
        .insert(oidcRevokedGrants)
        .values({ grantId, expiresAt: new Date(Date.now() + deps.tombstoneTtlSeconds * 1000) })
        .onConflictDoNothing();
      await tx.delete(oidcPayloads).where(eq(oidcPayloads.grantId, grantId));
    });
  }

  class ClientAdapter implements Adapter {
    async upsert(): Promise<void> {
      throw new Error('clients are managed through the CLI, bootstrap file or admin API');
    }
    async find(id: string): Promise<AdapterPayload | undefined> {
      if (hasNul(id)) return undefined;
      return deps.clients.findClientMetadataById(id) as Promise<AdapterPayload | undefined>;
    }
    async findByUserCode(): Promise<undefined> {
      return undefined;
    }
    async findByUid(): Promise<undefined> {
      return undefined;
    }
    async consume(): Promise<void> {}
    async destroy(): Promise<void> {
      throw new Error('clients are managed through the CLI, bootstrap file or admin API');
    }
    async revokeByGrantId(): Promise<void> {}
  }

  class PostgresAdapter implements Adapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
      if (hasNul(payload)) throw new errors.InvalidRequest('request parameters must not contain NUL characters');
      await upsert({
        model: this.model,
        id,
        payload,
        grantId: this.model === 'Grant' ? id : (payload.grantId ?? null),
        userCode: payload.userCode ?? null,
        uid: payload.uid ?? null,
        accountId: payload.accountId ?? null,
        expiresAt: expiresIn ? new Date(Date.now() + expiresIn * 1000).toISOString() : null,
      });
    }

    private async findWhere(condition: ReturnType<typeof eq>, value: string): Promise<AdapterPayload | undefined> {
      if (hasNul(value)) return undefined;
      const [row] = await db
        .select({ payload: oidcPayloads.payload, consumedAt: oidcPayloads.consumedAt })
        .from(oidcPayloads)
        .where(and(eq(oidcPayloads.model, this.model), condition, notExpired, this.model === 'Session' ? sessionNotEnded : grantNotRevoked))
        .limit(1);
      return toPayload(row);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (hasNul(id)) return undefined;
      const [row] = this.model === 'Session' ? await findSessionById.execute({ id }) : await findById.execute({ model: this.model, id });
      return toPayload(row);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findWhere(eq(oidcPayloads.userCode, userCode), userCode);
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findWhere(eq(oidcPayloads.uid, uid), uid);
    }

    async consume(id: string): Promise<void> {
      const changed = await consumeById.execute({ model: this.model, id });
      if (changed.length) return;

      // Another request (possibly on another replica) consumed it between the library's check and ours.
      if (this.model === 'AuthorizationCode') {
        const [row] = await db
          .select({ grantId: oidcPayloads.grantId })
          .from(oidcPayloads)
          .where(and(eq(oidcPayloads.model, this.model), eq(oidcPayloads.id, id)));
        if (row?.grantId) await revokeGrant(row.grantId);
        throw new errors.InvalidGrant('authorization code already consumed');
      }
      // A concurrent refresh is indistinguishable from a double submit, so it fails without revoking;
      // a later, sequential reuse is caught by the library and revokes the grant.
      throw new errors.InvalidGrant(this.model === 'RefreshToken' ? 'refresh token already used' : 'grant request is invalid');
    }

    async destroy(id: string): Promise<void> {
      await db.delete(oidcPayloads).where(and(eq(oidcPayloads.model, this.model), eq(oidcPayloads.id, id)));
    }

    revokeByGrantId(grantId: string): Promise<void> {
      return revokeGrant(grantId);
    }
  }

  return class KeryuAdapter {
    constructor(model: string) {
      return model === 'Client' ? new ClientAdapter() : new PostgresAdapter(model);
    }
  } as unknown as Constructor;
}
