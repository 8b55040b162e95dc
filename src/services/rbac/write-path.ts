/**
 * The one way authorization data changes, used by the management API and by the bootstrap file alike.
 *
 * - Every write runs in one transaction that also sends NOTIFY on RBAC_CHANNEL (delivered on commit to every
 *   replica), then invalidates this process's cache and records its audit events (after the commit, so the log
 *   never describes a change that was rolled back). Given a transaction handle instead of the database, a write
 *   runs in a savepoint of it: the caller's transaction decides, and NOTIFY is delivered on its commit.
 * - `dryRun` runs the same change, measures which users gain or lose what, and rolls back.
 * - No escalation (nobody grants what they do not hold): unless the actor holds auth.superuser, a change may
 *   only confer permissions the actor holds, and levels up to its own (`assertConfers`).
 */
import { notify, type Db } from '../../db/client.js';
import { AppError } from '../../errors/index.js';
import type { Clock } from '../../lib/clock.js';
import type { RequestContext } from '../../lib/request-context.js';
import { createRbacQueries, type RbacQueries, type RoleRow } from '../../queries/rbac.js';
import type { AuditEvent, AuditService } from '../audit.js';
import { RBAC_CHANNEL, type DecisionCache } from './cache.js';
import { flatten, holds, resolveSubjects, SUPERUSER, type Effective } from './effective.js';

/** Who asks for a change: what the audit log names, what they hold (for no escalation), where the request came from. */
export interface Actor {
  audit: AuditEvent['actor'];
  effective: Effective;
  context?: RequestContext | undefined;
}

/**
 * The operator (the CLI, the bootstrap file): trusted with everything, like auth.superuser. Never built from
 * a request.
 */
export function systemActor(audit: AuditEvent['actor']): Actor {
  return {
    audit,
    effective: {
      subject: { kind: 'client', id: audit.type },
      label: audit.type,
      roles: new Map(),
      permissions: new Map(),
      grants: new Map(),
      level: Number.MAX_SAFE_INTEGER,
      mfaRequired: false,
      superuser: true,
      validUntil: Number.POSITIVE_INFINITY,
    },
  };
}

/** What a change would do, by user; nothing was written. */
export interface DryRun {
  dryRun: true;
  changes: Array<{ userId: string; email: string | null; gained: string[]; lost: string[]; levelBefore: number; levelAfter: number }>;
}

/** A change: runs on queries bound to the write's transaction; answers its result and the events to audit. */
export type Change<T> = (q: RbacQueries) => Promise<{ result: T; events: AuditEvent[] }>;

class Rollback extends Error {
  constructor(readonly result: DryRun) {
    super('dry run');
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`, 404);
export const forbidden = (message: string, required: string) => new AppError('forbidden', message, 403, { required });

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code === '23505' || e?.cause?.code === '23505';
}

export function auditEvent(actor: Actor, type: AuditEvent['type'], subject: { type: string; id: string }, details: Record<string, unknown>): AuditEvent {
  return { type, outcome: 'success', actor: actor.audit, subject, context: actor.context, details };
}

export interface RbacWritePathDeps {
  /** The database, or a transaction the writes join (as savepoints). */
  db: Db;
  audit: AuditService;
  cache: DecisionCache;
  clock: Clock;
}

export function createRbacWritePath(deps: RbacWritePathDeps) {
  const { db, cache, clock } = deps;

  /** No escalation: the actor must hold every permission in `codenames` (and reach `level`), unless superuser. */
  function assertConfers(actor: Actor, codenames: Iterable<string>, level: number, what: string): void {
    if (actor.effective.superuser) return;
    for (const codename of codenames) {
      if (!holds(actor.effective, codename)) throw forbidden(`${what} would confer ${codename}, which you do not hold`, codename);
    }
    if (level > actor.effective.level) throw forbidden(`${what} would confer level ${level}, above your level ${actor.effective.level}`, SUPERUSER);
  }

  return {
    db,
    queries: createRbacQueries(db),
    clock,
    assertConfers,

    /** Managing a role (changing, deleting, assigning it) confers everything it holds, inherited included. */
    async assertManagesRole(q: RbacQueries, actor: Actor, role: RoleRow, verb: string): Promise<void> {
      const closure = await q.findRoleClosure([role.id]);
      assertConfers(actor, closure.permissions, closure.level, `${verb} role ${role.name}`);
    },

    /** Runs a change in a transaction with NOTIFY; on commit invalidates the local cache and audits. */
    async write<T>(change: Change<T>): Promise<T> {
      const { result, events } = await db.transaction(async (tx) => {
        const out = await change(createRbacQueries(tx));
        await notify(tx, RBAC_CHANNEL, 'changed');
        return out;
      });
      cache.invalidate();
      await Promise.all(events.map((e) => deps.audit.record(e)));
      return result;
    },

    /** Runs a change, measures the effect on `affected(q)` users before and after, and rolls back. */
    async dryRun(affected: (q: RbacQueries) => Promise<string[]>, change: Change<unknown>): Promise<DryRun> {
      try {
        await db.transaction(async (tx) => {
          const q = createRbacQueries(tx);
          const at = clock();
          const before = await resolveSubjects(tx, 'user', await affected(q), { at });
          await change(q);
          const after = await resolveSubjects(tx, 'user', [...new Set([...before.keys(), ...(await affected(q))])], { at });
          const changes: DryRun['changes'] = [];
          for (const [userId, now] of after) {
            const was = before.get(userId);
            const a = was ? flatten(was) : new Set<string>();
            const b = flatten(now);
            const gained = [...b].filter((p) => !a.has(p)).sort();
            const lost = [...a].filter((p) => !b.has(p)).sort();
            const levelBefore = was?.level ?? 0;
            if (gained.length || lost.length || levelBefore !== now.level) {
              changes.push({ userId, email: now.label ?? was?.label ?? null, gained, lost, levelBefore, levelAfter: now.level });
            }
          }
          changes.sort((x, y) => (x.email ?? '').localeCompare(y.email ?? ''));
          throw new Rollback({ dryRun: true, changes });
        });
      } catch (err) {
        if (err instanceof Rollback) return err.result;
        throw err;
      }
      throw new Error('dry run did not roll back');
    },

    /** Tells every replica (and this one) that effective permissions changed outside a write (a user disabled or deleted). */
    async notifyChanged(): Promise<void> {
      await notify(db, RBAC_CHANNEL, 'changed');
      cache.invalidate();
    },
  };
}
export type RbacWritePath = ReturnType<typeof createRbacWritePath>;
