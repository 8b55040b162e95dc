/**
 * Administering users (the management API and the admin console): list and search, show, create, update
 * (profile, disable/enable), unlock, reset the second factors, end every session, delete.
 * No escalation: changing, deleting, unlocking or resetting the factors of a user needs outranking them
 * (`outrankGap`: every permission and object grant they hold, and their level; auth.superuser outranks all),
 * so a user manager cannot disable, delete or take over an administrator. A disabled user is compared by
 * what they would hold if enabled: otherwise disabling an administrator would let anyone re-enable them,
 * reset their factors or delete them.
 */
import type { Db } from '../db/client.js';
import { AppError } from '../errors/index.js';
import { decodeTimeCursor, toPage, type Page } from '../lib/pagination.js';
import { createUserQueries, type UserRow } from '../queries/users.js';
import type { AuditEvent, AuditService } from './audit.js';
import type { RequestContext } from '../lib/request-context.js';
import type { Clock } from '../lib/clock.js';
import { outrankGap, resolveSubject } from './rbac/effective.js';
import { isUuid } from '../lib/uuid.js';
import type { Actor } from './rbac/service.js';
import { emailSchema, type UserService } from './users.js';

export interface UserCreateInput {
  email: string;
  name?: string | undefined;
  phone?: string | undefined;
  password?: string | undefined;
  emailVerified?: boolean | undefined;
}

/** Only the fields given change; null clears name and phone. */
export interface UserUpdateInput {
  name?: string | null | undefined;
  phone?: string | null | undefined;
  emailVerified?: boolean | undefined;
  disabled?: boolean | undefined;
}

/** The user as the API answers and the audit log records it (before and after a change): one view of the aggregate. */
export function userView(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    email_verified: u.emailVerified,
    name: u.name,
    phone: u.phone,
    phone_verified: u.phoneVerified,
    disabled: u.disabled,
    created_at: u.createdAt.toISOString(),
    updated_at: u.updatedAt.toISOString(),
  };
}

export function createUserAdminService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  users: UserService;
  /** Clears brute-force counts and locks of an identifier (the same operation as `keryu user unlock`). */
  unlockIdentifier: (identifier: string) => Promise<number>;
  onChange: () => Promise<void>;
  /** Removes every factor and trusted device of a user; answers how many factors were removed. */
  resetMfa: (user: UserRow, actor: AuditEvent['actor'], context?: RequestContext) => Promise<number>;
  /** The failed sign-ins still counted against an identifier, and until when it must wait (brute-force protector). */
  lockState: (identifier: string) => Promise<{ failures: number; lockedUntil: Date | undefined }>;
  /** Ends every sign-in of a user (sessions, tokens, SSO sessions, grants), audited with the administrator as actor. */
  endAllSignIns: (userId: string, options: { reason: 'admin_ended' | 'mfa_reset'; actor: AuditEvent['actor'] }, context?: RequestContext) => Promise<number>;
}) {
  const queries = createUserQueries(deps.db);

  async function find(id: string): Promise<UserRow> {
    const user = isUuid(id) ? await queries.findUserById(id) : undefined;
    if (!user) throw new AppError('not_found', 'user not found', 404);
    return user;
  }

  async function assertOutranks(actor: Actor, user: UserRow, verb: string) {
    if (actor.effective.superuser) return;
    const target = await resolveSubject(deps.db, { kind: 'user', id: user.id }, { at: deps.clock(), includeDisabled: true });
    const gap = outrankGap(actor.effective, target);
    if (gap) throw new AppError('forbidden', `${verb} ${user.email} needs ${gap.reason}`, 403, { required: gap.required });
  }

  return {
    /** Oldest first; `email` matches a part of the email, `search` a part of the email or the name. */
    async listUsers(args: { limit: number; cursor?: string | undefined; email?: string | undefined; search?: string | undefined }): Promise<Page<UserRow>> {
      const rows = await queries.listUsers({ limit: args.limit, after: decodeTimeCursor(args.cursor), email: args.email, search: args.search });
      const page = toPage(rows, args.limit, (row) => ({ key: row.cursorKey, id: row.id }));
      return { items: page.items.map(({ cursorKey: _key, ...user }) => user), next_cursor: page.next_cursor };
    },
    getUser: (id: string): Promise<UserRow> => find(id),
    async createUser(input: UserCreateInput, actor: Actor): Promise<UserRow> {
      emailSchema.parse(input.email);
      const user = await deps.users.createUser(
        { email: input.email, name: input.name, phone: input.phone, password: input.password, emailVerified: input.emailVerified },
        actor.audit,
        actor.context,
      );
      return user;
    },
    async updateUser(id: string, input: UserUpdateInput, actor: Actor): Promise<UserRow> {
      const before = await find(id);
      await assertOutranks(actor, before, 'changing');
      const changes: Record<string, unknown> = {};
      if (input.name !== undefined) changes.name = input.name;
      if (input.phone !== undefined) changes.phone = input.phone;
      if (input.emailVerified !== undefined) changes.emailVerified = input.emailVerified;
      if (input.disabled !== undefined) changes.disabled = input.disabled;
      const after = Object.keys(changes).length ? await queries.updateUser(id, changes) : before;
      if (!after) throw new AppError('not_found', 'user not found', 404);
      // A disabled user holds nothing: decisions about them must change at once.
      if (input.disabled !== undefined) await deps.onChange();
      await deps.audit.record({
        type: 'user.updated',
        outcome: 'success',
        actor: actor.audit,
        subject: { type: 'user', id },
        context: actor.context,
        details: { before: userView(before), after: userView(after) },
      });
      return after;
    },
    /**
     * Ends a brute-force lockout of the user's email (every device's count too). Only by someone who outranks
     * them: an unlock gives a password guesser against an administrator a fresh set of attempts.
     */
    async unlockUser(id: string, actor: Actor) {
      const user = await find(id);
      await assertOutranks(actor, user, 'unlocking');
      const cleared = await deps.unlockIdentifier(user.email);
      await deps.audit.record({
        type: 'user.unlocked',
        outcome: 'success',
        actor: actor.audit,
        subject: { type: 'user', id },
        context: actor.context,
        details: { identifier: user.email, cleared },
      });
      return { id, cleared };
    },
    /** The user's failed sign-ins still counted and lock (what "unlock" clears). */
    async lockState(id: string) {
      const user = await find(id);
      return deps.lockState(user.email);
    },
    /**
     * A user who lost every factor gets to enrol again. Like any change to a user, only by someone who
     * outranks them. Every sign-in of theirs ends too: a session from before the reset may have been opened
     * by whoever holds the lost factor.
     */
    async resetUserMfa(id: string, actor: Actor) {
      const user = await find(id);
      await assertOutranks(actor, user, 'resetting the factors of');
      const removed = await deps.resetMfa(user, actor.audit, actor.context);
      const ended = await deps.endAllSignIns(user.id, { reason: 'mfa_reset', actor: actor.audit }, actor.context);
      return { id, removed, ended };
    },
    /** Signs the user out everywhere (a stolen laptop, a departure). Only by someone who outranks them. */
    async endUserSessions(id: string, actor: Actor) {
      const user = await find(id);
      await assertOutranks(actor, user, 'ending the sessions of');
      return { id, ended: await deps.endAllSignIns(user.id, { reason: 'admin_ended', actor: actor.audit }, actor.context) };
    },
    async deleteUser(id: string, actor: Actor) {
      const before = await find(id);
      await assertOutranks(actor, before, 'deleting');
      await queries.deleteUser(id);
      await deps.onChange();
      await deps.audit.record({
        type: 'user.deleted',
        outcome: 'success',
        actor: actor.audit,
        subject: { type: 'user', id },
        context: actor.context,
        details: { before: userView(before), after: null },
      });
    },
  };
}
export type UserAdminService = ReturnType<typeof createUserAdminService>;
