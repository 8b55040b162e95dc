/**
 * Bulk assignment: one role to a list of people named by email, previewed then applied. The preview runs
 * the change as a dry run (who gains what) and lists the emails that name nobody; applying assigns the
 * role to every known user in ONE transaction through the write path, so either all of them hold it or
 * none does, and the no-escalation rule is the one of a single assignment (the actor must hold everything
 * the role confers). Each assignment is audited as `role.assigned`, like one made singly.
 */
import { AppError } from '../../errors/index.js';
import type { RbacQueries } from '../../queries/rbac.js';
import { normalizeEmail } from '../users.js';
import { assignmentView } from './assignments.js';
import { auditEvent, type Actor, type DryRun, type RbacWritePath } from './write-path.js';

/** At most this many emails in one bulk assignment: a page's textarea, not an import job (one transaction holds them all). */
export const MAX_BULK_EMAILS = 500;

export interface BulkAssignmentInput {
  /** Emails as typed; normalized and de-duplicated here. */
  emails: string[];
  role: string;
  expiresAt?: Date | undefined;
}

export interface BulkAssignmentPreview {
  role: string;
  expiresAt: Date | null;
  /** Known users, by email. */
  users: Array<{ id: string; email: string }>;
  /** Emails that name nobody, as normalized. */
  unknown: string[];
  dryRun: DryRun;
}

export interface BulkAssignmentResult {
  role: string;
  assigned: Array<{ id: string; email: string }>;
  unknown: string[];
}

/** The emails of a textarea: separated by white space, commas or semicolons. */
export function parseEmailList(text: string): string[] {
  return text.split(/[\s,;]+/).filter(Boolean);
}

export function createBulkAssignmentCommands(path: RbacWritePath) {
  const { write, dryRun, assertManagesRole, clock } = path;

  function normalize(input: BulkAssignmentInput): string[] {
    const emails = [...new Set(input.emails.map(normalizeEmail).filter(Boolean))];
    if (!emails.length) throw new AppError('invalid_request', 'emails: give at least one email');
    if (emails.length > MAX_BULK_EMAILS) throw new AppError('invalid_request', `emails: at most ${MAX_BULK_EMAILS} at once`);
    if (emails.some((e) => e.length > 320 || e.includes('\u0000'))) throw new AppError('invalid_request', 'emails: not an email address');
    return emails;
  }

  /** The change itself, shared by the preview (rolled back) and the apply (committed). */
  const assignAll = (emails: string[], input: BulkAssignmentInput, actor: Actor) => async (q: RbacQueries) => {
    const role = await q.findRoleByName(input.role);
    if (!role) throw new AppError('invalid_request', `role: unknown role ${input.role}`);
    const expiresAt = input.expiresAt ?? null;
    if (expiresAt && expiresAt.getTime() <= clock().getTime()) throw new AppError('invalid_request', 'expires_at: must be in the future');
    await assertManagesRole(q, actor, role, 'assigning');
    const found = (await q.findUsersByEmails(emails)).sort((a, b) => a.email.localeCompare(b.email));
    const events = [];
    for (const user of found) {
      const before = await q.findUserRole(user.id, role.id);
      await q.upsertUserRole(user.id, role.id, expiresAt);
      const was = before ? assignmentView({ roleId: role.id, role: role.name, expiresAt: before.expiresAt }) : null;
      const after = assignmentView({ roleId: role.id, role: role.name, expiresAt });
      events.push(auditEvent(actor, 'role.assigned', { type: 'user', id: user.id }, { before: was, after, bulk: true }));
    }
    const known = new Set(found.map((u) => u.email.toLowerCase()));
    return { result: { role: role.name, expiresAt, assigned: found, unknown: emails.filter((e) => !known.has(e)) }, events };
  };

  return {
    /** Who would gain what, and which emails name nobody; nothing is written. */
    async previewBulkAssignment(input: BulkAssignmentInput, actor: Actor): Promise<BulkAssignmentPreview> {
      const emails = normalize(input);
      let outcome: { assigned: Array<{ id: string; email: string }>; unknown: string[]; role: string; expiresAt: Date | null } | undefined;
      const change = assignAll(emails, input, actor);
      const measured = await dryRun(
        async (q) => (await q.findUsersByEmails(emails)).map((u) => u.id),
        async (q) => {
          const out = await change(q);
          outcome = out.result;
          return out;
        },
      );
      if (!outcome) throw new Error('dry run did not run the change');
      return { role: outcome.role, expiresAt: outcome.expiresAt, users: outcome.assigned, unknown: outcome.unknown, dryRun: measured };
    },
    /** Assigns the role to every known user in one transaction; answers who got it and which emails name nobody. */
    async applyBulkAssignment(input: BulkAssignmentInput, actor: Actor): Promise<BulkAssignmentResult> {
      const emails = normalize(input);
      const { role, assigned, unknown } = await write(assignAll(emails, input, actor));
      return { role, assigned, unknown };
    },
  };
}
