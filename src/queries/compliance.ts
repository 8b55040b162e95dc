/**
 * Read-only facts the compliance report judges: clients, roles and their holders, factors, sign-ins, keys, job runs.
 */
import { and, eq, gt, inArray, isNotNull, isNull, ne, or, sql } from 'drizzle-orm';
import { selectRows, type DbOrTx } from '../db/client.js';
import { clientRoles, clients, jobRuns, mfaFactors, roles, signingKeys, userRoles, users } from '../db/schema/index.js';

export function createComplianceQueries(db: DbOrTx) {
  return {
    async listClients() {
      return db
        .select({ clientId: clients.clientId, metadata: clients.metadata, hasSecret: sql<boolean>`${clients.clientSecretDigest} is not null`, createdAt: clients.createdAt })
        .from(clients)
        .orderBy(clients.clientId);
    },
    async listRoles() {
      return db.select({ id: roles.id, name: roles.name, mfaRequired: roles.mfaRequired }).from(roles).orderBy(roles.name);
    },
    /** Enabled users holding any of the roles through an unexpired assignment, with the roles' ids. */
    async findActiveHoldersOfRoles(roleIds: string[]) {
      if (!roleIds.length) return [];
      return db
        .select({ userId: users.id, email: users.email, createdAt: users.createdAt, roleId: userRoles.roleId })
        .from(userRoles)
        .innerJoin(users, eq(users.id, userRoles.userId))
        .where(and(inArray(userRoles.roleId, roleIds), eq(users.disabled, false), or(isNull(userRoles.expiresAt), gt(userRoles.expiresAt, sql`now()`))));
    },
    async findClientsHoldingRoles(roleIds: string[]): Promise<string[]> {
      if (!roleIds.length) return [];
      const rows = await db.selectDistinct({ clientId: clientRoles.clientId }).from(clientRoles).where(inArray(clientRoles.roleId, roleIds));
      return rows.map((r) => r.clientId);
    },
    /** Users (of those given) with at least one confirmed second factor (recovery codes alone do not count). */
    async findUsersWithFactor(userIds: string[]): Promise<Set<string>> {
      if (!userIds.length) return new Set();
      const rows = await db
        .selectDistinct({ userId: mfaFactors.userId })
        .from(mfaFactors)
        .where(and(inArray(mfaFactors.userId, userIds), isNotNull(mfaFactors.confirmedAt), ne(mfaFactors.type, 'recovery_code')));
      return new Set(rows.map((r) => r.userId));
    },
    /** Each user's latest successful sign-in, from the audit log. */
    async findLastSignIns(userIds: string[]): Promise<Map<string, Date>> {
      if (!userIds.length) return new Map();
      const rows = await selectRows<{ subject_id: string; at: string | Date }>(
        db,
        sql`select subject_id, max(occurred_at) as at from audit_events
            where type = 'login' and outcome = 'success' and subject_id in (${sql.join(userIds.map((id) => sql`${id}`), sql`, `)})
            group by subject_id`,
      );
      return new Map(rows.map((r) => [r.subject_id, new Date(r.at)]));
    },
    async findCurrentSigningKeys(now: Date) {
      return db
        .select({ kid: signingKeys.kid, alg: signingKeys.alg, createdAt: signingKeys.createdAt })
        .from(signingKeys)
        .where(and(sql`${signingKeys.activatesAt} <= ${now.toISOString()}::timestamptz`, isNull(signingKeys.retiresAt)));
    },
    /**
     * The newest break the sealing job or a verification reported (`audit.seal_broken`) that no later successful
     * verification (`audit.verified`, success) cleared; undefined when there is none.
     */
    async findUnclearedSealBreak(): Promise<{ at: Date; message: string | null } | undefined> {
      const rows = await selectRows<{ at: string | Date; message: string | null }>(
        db,
        sql`select occurred_at as at, coalesce(details->>'message', details->>'problem') as message from audit_events b
            where b.type = 'audit.seal_broken'
              and not exists (select 1 from audit_events v where v.type = 'audit.verified' and v.outcome = 'success' and v.occurred_at > b.occurred_at)
            order by occurred_at desc limit 1`,
      );
      const row = rows[0];
      return row ? { at: new Date(row.at), message: row.message } : undefined;
    },
    async findJobRun(name: string) {
      const [row] = await db.select().from(jobRuns).where(eq(jobRuns.name, name));
      return row;
    },
  };
}
export type ComplianceQueries = ReturnType<typeof createComplianceQueries>;
