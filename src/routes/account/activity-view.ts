/**
 * The activity page's copy: each audit event of the user in plain words ("Signed in from Firefox on Linux,
 * 203.0.113.7", "Password changed"), the names of the kinds the list filters by, and whether an event offers
 * "This wasn't me". Pure functions of the event rows; the one place this copy lives.
 */
import { describeDevice } from '../../lib/device.js';
import { dateView } from '../../views/date.js';
import { ACCOUNT_CLIENT_ID } from '../../services/account/relying-party.js';
import type { ActivityKind, ActivityRow } from '../../services/activity.js';
import { describeDeviceInfo, REPORT_MAX_TTL_SECONDS } from '../../services/mfa/notices.js';

export const ACTIVITY_KIND_LABELS: Record<ActivityKind | 'all', string> = {
  all: 'All activity',
  sign_ins: 'Sign-ins',
  security: 'Security changes',
  profile: 'Profile changes',
  sessions: 'Sessions ended',
  tokens: 'Personal tokens',
  applications: 'Applications',
};

/** One line of the list. */
export interface ActivityItemView {
  id: string;
  /** RFC 3339, for `<time datetime>`. */
  at: string;
  /** The time as people read it, in UTC (the server does not know the reader's zone). */
  when: string;
  text: string;
  /** Secondary facts: how, to which application, why it failed. */
  details: string[];
  failed: boolean;
  /** A successful sign-in recent enough to be reported ("This wasn't me"). */
  reportable: boolean;
}

const FACTOR_NAMES: Record<string, string> = { totp: 'authenticator app', sms: 'text message codes', email: 'email codes', recovery_code: 'recovery codes' };
const AMR_NAMES: Record<string, string> = { pwd: 'password', otp: 'one-time code', sms: 'text message code', email: 'email code', mfa: 'second factor' };
const REASONS: Record<string, string> = {
  wrong_password: 'wrong password',
  invalid_credentials: 'wrong email or password',
  too_many_attempts: 'too many attempts',
  wrong_code: 'wrong code',
  reauthentication_failed: 'the confirmation failed',
  disabled: 'the account is disabled',
};

const text = (value: unknown): string | undefined => (typeof value === 'string' && value ? value : undefined);
const factorName = (type: unknown) => FACTOR_NAMES[String(type)] ?? 'a sign-in method';
const fromDevice = (row: ActivityRow) => {
  const device = row.userAgent ? describeDeviceInfo(describeDevice(row.userAgent)) : 'an unknown device';
  return `from ${device}${row.ip ? `, ${row.ip}` : ''}`;
};
const application = (clientId: string | null) => (clientId && clientId !== ACCOUNT_CLIENT_ID ? `Application: ${clientId}` : clientId ? 'Application: your account pages' : undefined);

/** What happened, in one sentence, and the facts under it. */
function describe(row: ActivityRow): { text: string; details: Array<string | undefined> } {
  const d = row.details;
  const failed = row.outcome === 'failure';
  const reason = text(d.reason) ?? text(d.error);
  const why = reason ? `Reason: ${REASONS[reason] ?? reason.replaceAll('_', ' ')}` : undefined;
  switch (row.type) {
    case 'login': {
      const how = text(d.method)
        ?.split('+')
        .map((amr) => AMR_NAMES[amr] ?? amr);
      return {
        text: `${failed ? 'Failed sign-in' : 'Signed in'} ${fromDevice(row)}`,
        details: [how?.length ? `With ${[...new Set(how)].join(' and ')}` : undefined, application(row.clientId), failed ? why : undefined],
      };
    }
    case 'logout':
      return { text: d.all_sessions === true ? 'Signed out everywhere' : 'Signed out', details: [application(row.clientId)] };
    case 'login.new_ip':
      return { text: `Signed in from a new network ${fromDevice(row)}`, details: [] };
    case 'login.ip_changed':
      return { text: `The network changed during a sign-in ${fromDevice(row)}`, details: [] };
    case 'login.challenge_failed':
      return { text: `A wrong code was entered while signing in ${fromDevice(row)}`, details: [why] };
    case 'password.changed':
      return { text: failed ? 'Password change failed' : 'Password changed', details: [failed ? why : undefined] };
    case 'password.reset':
      return { text: 'Password reset with an email link', details: [] };
    case 'password.reset_requested':
      return { text: 'Password reset requested', details: [failed ? why : undefined] };
    case 'mfa.factor_activated':
      return { text: failed ? `Adding a second factor failed: ${factorName(d.type)}` : `Second factor added: ${factorName(d.type)}`, details: [failed ? why : undefined] };
    case 'mfa.factor_removed':
      if (d.reset_by_admin === true) return { text: 'Every second factor was removed by an administrator', details: [] };
      if (reason === 'compromise_reported') return { text: 'Second factors removed after your report', details: [] };
      return { text: failed ? `Removing a second factor failed: ${factorName(d.type)}` : `Second factor removed: ${factorName(d.type)}`, details: [failed ? why : undefined] };
    case 'mfa.factor_updated':
      return { text: 'Preferred second factor changed', details: [] };
    case 'mfa.recovery_codes_generated':
      return { text: failed ? 'Creating recovery codes failed' : 'New recovery codes created', details: [failed ? why : undefined] };
    case 'device.trusted':
      return { text: `Device remembered ${fromDevice(row)}`, details: [] };
    case 'device.distrusted':
      return { text: 'Trusted device forgotten', details: [] };
    case 'account.compromise_reported':
      return { text: failed ? 'A report link could not be used' : 'You reported activity that was not you: every session was signed out', details: [] };
    case 'user.updated': {
      const changed = Array.isArray(d.changed) ? d.changed.filter((c): c is string => typeof c === 'string') : [];
      return { text: changed.length ? `Profile changed: ${changed.join(', ')}` : 'Profile changed by an administrator', details: [] };
    }
    case 'session.revoked': {
      const sessionReasons: Record<string, string> = {
        logout_all: 'Signed out everywhere',
        password_change: 'Other sessions ended after a password change',
        password_reset: 'Every session ended after a password reset',
        compromise_reported: 'Every session ended after your report',
        admin_ended: 'Every session was ended by an administrator',
        mfa_reset: 'Every session ended when an administrator reset your second factors',
        refresh_token_reuse: 'A session was ended: its token was used twice',
        device_mismatch: 'A session was ended: it was used from another device',
      };
      return { text: (reason && sessionReasons[reason]) ?? 'A session was signed out', details: [] };
    }
    case 'token.reuse_detected':
      return { text: 'A token was used twice; its session was ended', details: [application(row.clientId)] };
    case 'token.created':
      return { text: `Personal token created${text(d.name) ? `: ${text(d.name)}` : ''}`, details: [] };
    case 'token.updated':
      return { text: 'Personal token changed', details: [] };
    case 'token.revoked':
      return { text: d.deleted === true ? 'Personal token deleted' : 'Personal token or session ended', details: [] };
    case 'consent':
      return { text: `Access allowed to ${row.clientId ?? 'an application'}`, details: [] };
    case 'oidc.grant_revoked':
      return { text: `Access removed for ${row.clientId ?? 'an application'}`, details: [] };
    default:
      return { text: row.type, details: [] };
  }
}

export function activityItemView(row: ActivityRow, now: Date): ActivityItemView {
  const described = describe(row);
  const at = dateView(row.occurredAt);
  return {
    id: row.id,
    at: at.iso,
    when: at.text,
    text: described.text,
    details: described.details.filter((line): line is string => Boolean(line)),
    failed: row.outcome === 'failure',
    reportable: row.type === 'login' && row.outcome === 'success' && now.getTime() - row.occurredAt.getTime() <= REPORT_MAX_TTL_SECONDS * 1000,
  };
}
