/**
 * A user's own security events (what the account's activity list shows), paged newest first, and the kinds
 * a person filters them by. A kind is a closed list of audit event types: the account page shows only the
 * events a person can act on (their sign-ins, security changes, sessions, tokens, applications), never the
 * protocol's bookkeeping (each token request, each interaction step).
 */
import type { DbOrTx } from '../db/client.js';
import { isUuid } from '../lib/uuid.js';
import { decodeTimeCursor, toPage, type Page, type PageRequest } from '../lib/pagination.js';
import { createActivityQueries, type ActivityRow } from '../queries/activity.js';
import type { AuditEventType } from './audit.js';

export type { ActivityRow };

export const ACTIVITY_KINDS = {
  sign_ins: ['login', 'logout', 'login.new_ip', 'login.ip_changed', 'login.challenge_failed'],
  security: [
    'password.changed',
    'password.reset',
    'password.reset_requested',
    'mfa.factor_activated',
    'mfa.factor_removed',
    'mfa.factor_updated',
    'mfa.recovery_codes_generated',
    'device.trusted',
    'device.distrusted',
    'account.compromise_reported',
  ],
  profile: ['user.updated'],
  sessions: ['session.revoked', 'token.reuse_detected'],
  tokens: ['token.created', 'token.updated', 'token.revoked'],
  applications: ['consent', 'oidc.grant_revoked'],
} as const satisfies Record<string, readonly AuditEventType[]>;
export type ActivityKind = keyof typeof ACTIVITY_KINDS;

export const isActivityKind = (value: string): value is ActivityKind => Object.hasOwn(ACTIVITY_KINDS, value);

/** Every type some kind names: what "all activity" shows on the account page. */
const EVERY_KIND: readonly AuditEventType[] = Object.values(ACTIVITY_KINDS).flat();

export function createActivityService(deps: { db: DbOrTx }) {
  const queries = createActivityQueries(deps.db);
  return {
    /**
     * Events where the user is the actor or the subject; an unknown or altered cursor is `invalid_request`.
     * Without `kinds` every event (the JSON API); with `kinds` (possibly `'all'`) only those of the kinds.
     */
    async listUserActivity(userId: string, page: PageRequest, kinds?: ActivityKind | 'all'): Promise<Page<ActivityRow>> {
      const after = decodeTimeCursor(page.cursor);
      const types = kinds === undefined ? undefined : kinds === 'all' ? EVERY_KIND : ACTIVITY_KINDS[kinds];
      const rows = await queries.findUserActivity(userId, { limit: page.limit + 1, after, types });
      return toPage(rows, page.limit, (row) => ({ key: row.key, id: row.id }));
    },

    /** A successful sign-in of the user (what "This wasn't me" reports), or undefined: someone else's, or not a sign-in. */
    async findOwnSignIn(userId: string, eventId: string): Promise<ActivityRow | undefined> {
      if (!isUuid(eventId)) return undefined;
      const row = await queries.findUserEvent(userId, eventId);
      return row && row.type === 'login' && row.outcome === 'success' ? row : undefined;
    },
  };
}
export type ActivityService = ReturnType<typeof createActivityService>;
