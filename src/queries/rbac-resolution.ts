/**
 * The one recursive query behind effective permissions: for a set of subjects (users or service-account
 * clients), their labels, every role they hold (directly through an assignment unexpired at `at`, or as an
 * ancestor of one), those roles' permissions, and the object grants made to the roles or to the subject.
 * The recursive step is a UNION over (subject, role, reached-from) tuples, a finite set, so even a cycle that
 * slipped into the data can never make it run forever. Interpreting the rows is services/rbac/effective.ts.
 */
import { sql, type SQL } from 'drizzle-orm';
import { selectRows, type DbOrTx } from '../db/client.js';

export type SubjectKind = 'user' | 'client';

/**
 * One row per fact, in a shape both subject kinds share: `kind` says which columns mean what.
 * subject: a = label. role: a = role id, b = held via (child role id, null when assigned directly), c = name,
 * n = level, t = expiry of the direct assignment, f = mfa_required. perm: a = role id, c = codename.
 * grant: a = grant id, b = role id (null for a grant to the subject), c = codename, d = object type, e = object id.
 */
export interface ResolutionRow extends Record<string, unknown> {
  kind: 'subject' | 'role' | 'perm' | 'grant';
  subject: string;
  a: string | null;
  b: string | null;
  c: string | null;
  d: string | null;
  e: string | null;
  n: number | null;
  t: Date | string | null;
  f: boolean | null;
}

/** A PostgreSQL array literal of quoted strings (values never contain NUL: ids are validated by the caller). */
function arrayLiteral(values: string[]): string {
  return `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

function resolutionQuery(kind: SubjectKind, ids: string[], at: Date, includeDisabled: boolean): SQL {
  const list = arrayLiteral(ids);
  const enabled = includeDisabled ? sql`` : sql`and not u.disabled`;
  const subjects =
    kind === 'user'
      ? sql`select u.id::text as subject, u.email as label from users u where u.id = any(${list}::uuid[]) ${enabled}`
      : sql`select c.client_id as subject, c.client_id as label from clients c where c.client_id = any(${list}::text[])`;
  const seeds =
    kind === 'user'
      ? sql`select ur.user_id::text, ur.role_id, null::uuid, ur.expires_at from user_roles ur join subjects s on s.subject = ur.user_id::text
            where ur.user_id = any(${list}::uuid[]) and (ur.expires_at is null or ur.expires_at > ${at.toISOString()}::timestamptz)`
      : sql`select cr.client_id, cr.role_id, null::uuid, null::timestamptz from client_roles cr join subjects s on s.subject = cr.client_id`;
  const subjectGrants =
    kind === 'user'
      ? sql`union all
            select 'grant', s.subject, g.id::text, null, p.codename, g.object_type, g.object_id, null, null, null
            from subjects s join object_grants g on g.user_id = s.subject::uuid join permissions p on p.id = g.permission_id`
      : sql``;
  return sql`
    with recursive
      subjects(subject, label) as (${subjects}),
      held(subject, role_id, via, expires_at) as (
        ${seeds}
        union
        select h.subject, rp.parent_id, h.role_id, null::timestamptz from held h join role_parents rp on rp.role_id = h.role_id
      ),
      held_roles as (select distinct subject, role_id from held)
    select 'subject' as kind, s.subject, s.label as a, null::text as b, null::text as c, null::text as d, null::text as e,
           null::int as n, null::timestamptz as t, null::boolean as f
      from subjects s
    union all
    select 'role', h.subject, h.role_id::text, h.via::text, r.name, null, null, r.level, h.expires_at, r.mfa_required
      from held h join roles r on r.id = h.role_id
    union all
    select 'perm', x.subject, x.role_id::text, null, p.codename, null, null, null, null, null
      from held_roles x join role_permissions rp on rp.role_id = x.role_id join permissions p on p.id = rp.permission_id
    union all
    select 'grant', x.subject, g.id::text, g.role_id::text, p.codename, g.object_type, g.object_id, null, null, null
      from held_roles x join object_grants g on g.role_id = x.role_id join permissions p on p.id = g.permission_id
    ${subjectGrants}`;
}

/**
 * The resolution rows of many subjects of one kind (ids already validated for their kind). A disabled user
 * yields no rows unless `includeDisabled` (what it would hold if enabled, for comparisons).
 */
export function findResolutionRows(db: DbOrTx, kind: SubjectKind, ids: string[], options: { at: Date; includeDisabled?: boolean | undefined }): Promise<ResolutionRow[]> {
  return selectRows<ResolutionRow>(db, resolutionQuery(kind, ids, options.at, options.includeDisabled === true));
}
