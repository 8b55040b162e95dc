/**
 * What the Users pages show: view models built from the services' answers (never rows straight into a
 * template), dates through views/date.ts, and each permission's source in words.
 */
import type { UserRow } from '../../services/users.js';
import type { ActivityRow } from '../../services/activity.js';
import type { FactorPublicView } from '../../services/mfa/factors.js';
import { describeDeviceInfo } from '../../services/mfa/notices.js';
import type { PermissionSource } from '../../services/rbac/provenance.js';
import type { TokenView } from '../../services/sessions/model.js';
import { dateView } from '../../views/date.js';

/** What the page says after an action (the `done` of the redirect). */
export const USER_NOTICES = {
  disabled: 'The user was disabled: they cannot sign in, and they hold no permission.',
  enabled: 'The user was enabled again.',
  unlocked: 'Failed sign-ins were cleared: the user can sign in again now.',
  mfa_reset: 'Every second factor was removed and every session ended. The user was told by email and sets up a factor at their next sign-in.',
  sessions_ended: 'Every session, token and application sign-in of the user was ended.',
  role_assigned: 'The role was assigned.',
  role_removed: 'The role was removed.',
} as const;
export type UserNotice = keyof typeof USER_NOTICES;

export function userListItem(user: UserRow) {
  return { id: user.id, email: user.email, name: user.name ?? '', disabled: user.disabled, created: dateView(user.createdAt) };
}

export function profileView(user: UserRow) {
  return {
    id: user.id,
    email: user.email,
    name: user.name ?? '',
    phone: user.phone ?? '',
    emailVerified: user.emailVerified,
    disabled: user.disabled,
    passwordResetRequired: user.passwordResetRequired,
    created: dateView(user.createdAt),
    updated: dateView(user.updatedAt),
  };
}

export function factorView(factor: FactorPublicView) {
  return {
    label: factor.label,
    state: factor.active ? 'Active' : 'Not confirmed',
    remaining: factor.remaining,
    lastUsed: dateView(factor.last_used_at),
  };
}

const SIGN_IN_KINDS: Record<TokenView['kind'], string> = {
  session: 'Session (first-party app)',
  personal: 'Personal token',
  oidc_session: 'Browser sign-in',
  oidc_grant: 'Application access',
};

export function signInView(entry: TokenView) {
  return {
    kind: SIGN_IN_KINDS[entry.kind] ?? entry.kind,
    device: describeDeviceInfo(entry.device_info),
    ip: entry.ip_address ?? 'Unknown',
    created: dateView(entry.created_at),
    lastUsed: dateView(entry.last_used_at),
  };
}

export function assignmentView(a: { roleId: string; role: string; expiresAt: Date | null; active: boolean }) {
  return { roleId: a.roleId, role: a.role, expires: dateView(a.expiresAt), active: a.active };
}

/** "Role editor (assigned)", "Inherited: editor → writer", "Grant on documents:42 to the user". */
export function sourceView(source: PermissionSource) {
  let from: string;
  if (source.kind === 'grant') {
    const to = source.chain.length ? `role ${source.chain.join(' → ')}` : 'the user';
    from = `Grant on ${source.object?.type}:${source.object?.id} to ${to}`;
  } else if (source.chain.length <= 1) {
    from = `Role ${source.chain[0] ?? ''} (assigned)`;
  } else {
    from = `Inherited: ${source.chain.join(' → ')}`;
  }
  return { permission: source.permission, from, onObject: source.kind === 'grant' };
}

export function activityView(row: ActivityRow) {
  return { type: row.type, failed: row.outcome === 'failure', outcome: row.outcome === 'failure' ? 'Failure' : 'Success', ip: row.ip ?? '', client: row.clientId ?? '', at: dateView(row.occurredAt) };
}
